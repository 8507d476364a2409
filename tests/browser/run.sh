#!/usr/bin/env bash
# Runs the dashboard's browser tests (CTest: integration.test_browser):
# dashboard.test.mjs (anonymous profile) and auth.test.mjs (login, CSRF).
#   tests/browser/run.sh <junit.xml>   with WEIR_BIN set (CTest sets it)
# Prints the spec report and writes JUnit XML, which scripts/run-tests.sh
# counts case by case like the pytest files.
set -euo pipefail
junit=${1:-${WEIR_ARTEFACTS:-/tmp}/test_browser.xml}
mkdir -p "$(dirname "$junit")" "${WEIR_ARTEFACTS:-/tmp}"
here=$(cd "$(dirname "$0")" && pwd)
exec node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=junit --test-reporter-destination="$junit" "$here/dashboard.test.mjs" "$here/auth.test.mjs"
