#!/usr/bin/env bash
# bench/record/run.sh -- payload decode rates of src/record (decode_bench.c,
# header comment for what is measured). Built here with plain cc and -O2,
# like a release build, not through CMake; the binary goes to
# $OUT_DIR/bin/record_decode_bench, the results to $OUT_DIR/record.md and
# $OUT_DIR/record.json.
#
# Settings (environment):
#   SECONDS_PER_CASE  measured seconds per case      2
#   CPU               core to pin to (taskset)       1, if taskset exists
#   CC                compiler                       cc
#   OUT_DIR           where results go               <repo>/bench/out
#
# On a shared machine, run it when the cores are idle (no fuzzers or builds):
# the figures are single-thread rates and move with other load.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
SECONDS_PER_CASE=${SECONDS_PER_CASE:-2}
CPU=${CPU:-1}
CC=${CC:-cc}
OUT_DIR=${OUT_DIR:-$repo/bench/out}
mkdir -p "$OUT_DIR/bin"
bin="$OUT_DIR/bin/record_decode_bench"

$CC -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I"$repo/src" \
  "$here/decode_bench.c" "$repo"/src/record/*.c "$repo/src/base/arena.c" \
  "$repo/src/base/buf.c" "$repo/src/base/err.c" \
  $(pkg-config --cflags --libs jansson libxxhash) -lm -o "$bin"

pin=()
if command -v taskset >/dev/null; then pin=(taskset -c "$CPU"); fi
{
  echo "# bench/record: payload decodes per second"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) CPUs, ${SECONDS_PER_CASE} s per case," \
       "$($CC --version | head -1), jansson $(pkg-config --modversion jansson)"
  echo
  "${pin[@]}" "$bin" -s "$SECONDS_PER_CASE" -j "$OUT_DIR/record.json"
} | tee "$OUT_DIR/record.md"
