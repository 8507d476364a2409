#!/usr/bin/env bash
# Runs every registered test (unit, integration, fuzz smoke) in a built test
# tree and ends with the one summary line CI reads: "N passed, M failed".
set -uo pipefail
dir=${1:-build-test}
mkdir -p "$dir/logs"
log="$dir/logs/ctest.log"
ctest --test-dir "$dir" --output-on-failure -j "${TEST_JOBS:-2}" ${CTEST_ARGS:-} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
total=${total:-0}
failed=${failed:-0}
if [ "$total" -eq 0 ]; then
  echo "no tests ran"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "$((total - failed)) passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
