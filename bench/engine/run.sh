#!/usr/bin/env bash
# bench/engine/run.sh -- readings per second through one compiled rule
# (rule_bench.c, header comment for the cases). Links the release library
# build/libweircore.a (run `make build` first); results go to
# $OUT_DIR/engine.md.
#
# Settings (environment): SECONDS_PER_CASE (2), CPU to pin to (1), CC (cc),
# OUT_DIR (<repo>/bench/out). Run it when the cores are idle.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
SECONDS_PER_CASE=${SECONDS_PER_CASE:-2}
CPU=${CPU:-1}
CC=${CC:-cc}
OUT_DIR=${OUT_DIR:-$repo/bench/out}
mkdir -p "$OUT_DIR/bin"
bin="$OUT_DIR/bin/rule_bench"
$CC -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I"$repo/src" \
  "$here/rule_bench.c" "$repo/build/libweircore.a" \
  $(pkg-config --libs jansson libxxhash libuv sqlite3 libsodium libzstd inih libcurl libwebsockets openssl) \
  -lm -lpthread -o "$bin"
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c "$CPU"); fi
{
  echo "# bench/engine: readings per second through one rule"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc) CPUs, ${SECONDS_PER_CASE} s per case"
  echo
  "${pin[@]}" "$bin" "$SECONDS_PER_CASE"
} | tee "$OUT_DIR/engine.md"
