#!/usr/bin/env bash
# Runs each libFuzzer target for N seconds over its corpus. New findings land
# in fuzz-out/; crashing inputs worth keeping go to tests/fuzz/corpus/<target>/.
set -euo pipefail
bindir=$1; secs=${2:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
for bin in "$bindir"/fuzz_*; do
  name=$(basename "$bin")
  work="$root/fuzz-out/$name"; mkdir -p "$work"
  seed="$root/tests/fuzz/corpus/$name"; mkdir -p "$seed"
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -artifact_prefix="$work/" "$work" "$seed"
done
