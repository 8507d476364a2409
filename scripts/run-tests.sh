#!/usr/bin/env bash
# Runs every registered test (unit, integration, fuzz smoke) in a built test
# tree and ends with the one summary line CI reads: "N passed, M failed".
# Unit and fuzz tests count one per CTest entry; each pytest file counts its
# test cases (from the JUnit XML it writes), so the line says how many
# behaviours were checked, not how many files ran.
set -uo pipefail
dir=${1:-build-test}
mkdir -p "$dir/logs"
rm -rf "$dir/junit"
log="$dir/logs/ctest.log"
ctest --test-dir "$dir" --output-on-failure -j "${TEST_JOBS:-2}" ${CTEST_ARGS:-} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
/usr/bin/python3 - "$dir" "$log" "$status" <<'PY'
import glob, os, re, sys
import xml.etree.ElementTree as ET
d, log, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(log, errors="replace").read()
results = re.findall(r"Test\s+#\d+: (\S+) \.+\s*(\*\*\*)?(Passed|Failed|\S+)", text)
passed = failed = skipped = 0
for name, _, outcome in results:
    ok = outcome == "Passed"
    if name.startswith("integration."):
        xml = os.path.join(d, "junit", name.split(".", 1)[1] + ".xml")
        if os.path.exists(xml):
            root = ET.parse(xml).getroot()
            suites = [root] if root.tag == "testsuite" else list(root)
            for s in suites:
                t, f = int(s.get("tests", 0)), int(s.get("failures", 0)) + int(s.get("errors", 0))
                sk = int(s.get("skipped", 0))
                passed += t - f - sk
                skipped += sk
                failed += f
            if not ok and all(int(s.get("failures", 0)) + int(s.get("errors", 0)) == 0 for s in suites):
                failed += 1  # the file failed outside its test cases
            continue
    if ok:
        passed += 1
    else:
        failed += 1
if not results:
    print("no tests ran")
    failed = max(failed, 1)
if status != 0 and failed == 0:
    failed = 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
