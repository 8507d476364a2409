#!/usr/bin/env bash
# bench/run.sh -- runs every benchmark suite and leaves the results in
# bench/out/ (<suite>.md and <suite>.json). `make bench` calls it after
# building build/weir. SUITES picks suites (default: all of them); each
# suite's own settings are described at the top of bench/<suite>/run.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITES=${SUITES:-"mqtt ingest rules"}
status=0
for suite in $SUITES; do
  if [ ! -x "$here/$suite/run.sh" ]; then
    echo "bench: no suite '$suite' (bench/$suite/run.sh)" >&2
    status=1
    continue
  fi
  echo "bench: suite $suite" >&2
  "$here/$suite/run.sh" || { echo "bench: suite $suite failed" >&2; status=1; }
done
exit $status
