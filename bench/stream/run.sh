#!/usr/bin/env bash
# bench/stream/run.sh -- append throughput of the stream store
# (bench/stream/append_bench.c), built with a plain cc line against the
# sources it needs, so the number does not depend on the CMake build type.
#
# Settings (environment): RECORDS (default 10000000), PER_CALL (100),
# DIR (where the store goes, default /tmp; it is removed afterwards),
# OUT_DIR (bench/out). Runs sync=none and sync=interval on 1 and 4
# partitions in loop mode, plus sync=always for reference, and writes
# $OUT_DIR/stream.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT_DIR:-$root/bench/out}
mkdir -p "$out/bin"
bin="$out/bin/append_bench"
cc -std=c17 -O2 -g -D_GNU_SOURCE -I"$root/src" -o "$bin" \
  "$here/append_bench.c" "$root"/src/stream/*.c \
  "$root"/src/base/err.c "$root"/src/base/crc32c.c "$root"/src/base/wlog.c "$root"/src/base/fileio.c \
  $(pkg-config --cflags --libs libuv libxxhash) -lpthread
RECORDS=${RECORDS:-10000000}
PER_CALL=${PER_CALL:-100}
DIR=${DIR:-/tmp}
{
  echo "# stream append throughput"
  echo
  echo "$(date -u +%FT%TZ) $(uname -m), $(nproc) cores; ~100-byte records (16-byte key, 84-byte value), $PER_CALL records per append call"
  echo
  echo '```'
  for args in "-s none -p 1" "-s interval -p 1" "-s none -p 4" "-s interval -p 4" "-s always -p 1"; do
    # shellcheck disable=SC2086
    "$bin" -n "$RECORDS" -b "$PER_CALL" -d "$DIR" $args
  done
  echo '```'
} | tee "$out/stream.md"
