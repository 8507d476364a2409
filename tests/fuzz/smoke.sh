#!/usr/bin/env bash
# One fuzz smoke run: replay the kept corpus (regressions must still pass),
# then fuzz for FUZZ_SMOKE_SECONDS into a scratch copy so the tree stays clean.
set -euo pipefail
bin=$1; corpus=$2
secs=${FUZZ_SMOKE_SECONDS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if compgen -G "$corpus/*" >/dev/null; then
  "$bin" -runs=0 "$corpus"/*
fi
"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -artifact_prefix="$work/" "$work" "$corpus"
