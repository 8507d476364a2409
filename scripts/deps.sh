#!/usr/bin/env bash
# Installs what weir needs to build, run and test on Debian 12, and nothing
# when everything is already there (so `make run` stays quiet on a second call).
#   scripts/deps.sh build   libraries and toolchain for the release binary
#   scripts/deps.sh test    build + sanitizer/fuzzer toolchain + real clients
#   scripts/deps.sh bench   test + the peers the benchmarks compare against
set -euo pipefail
what=${1:-build}

build_pkgs=(build-essential cmake pkg-config libuv1-dev libssl-dev
  libwebsockets-dev libsqlite3-dev libsodium-dev libjansson-dev libinih-dev
  libzstd-dev libxxhash-dev libcurl4-openssl-dev xz-utils)
test_pkgs=(clang libclang-rt-14-dev libcmocka-dev mosquitto-clients
  python3 python3-pytest python3-paho-mqtt python3-requests python3-websockets
  sqlite3 openssl chromium)
bench_pkgs=(mosquitto libmosquitto-dev redis-server influxdb influxdb-client postgresql
  python3-psycopg2)

pkgs=("${build_pkgs[@]}")
case "$what" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
# Node.js runs MQTT.js over WebSocket and the browser tests, and npm fetches
# the dashboard's uPlot (web/), so every profile wants it; a machine that
# already has node and npm (from any source) keeps them.
if ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The dashboard's uPlot (web/node_modules, pinned by web/package-lock.json) is
# embedded into the binary at build time; without it weir builds with a
# dashboard that has no charts (docs/dashboard.md).
if [ -f web/package.json ] && [ ! -d web/node_modules/uplot ]; then
  echo "deps: npm ci in web/" >&2
  (cd web && npm ci --silent --no-audit --no-fund >/dev/null)
fi
# MQTT.js for the WebSocket test and playwright-core for the browser tests live
# in tests/node_modules, pinned by tests/package-lock.json.
if [ "$what" != build ] && [ -f tests/package.json ] &&
   { [ ! -d tests/node_modules/mqtt ] || [ ! -d tests/node_modules/playwright-core ]; }; then
  echo "deps: npm ci in tests/" >&2
  (cd tests && npm ci --silent --no-audit --no-fund >/dev/null)
fi
# Node-RED, the peer of the rules benchmark, in bench/rules/nodered/node_modules,
# pinned by its package-lock.json (Node.js >= 18.5, Debian 12's is 18.19).
if [ "$what" = bench ] && [ ! -d bench/rules/nodered/node_modules/node-red ]; then
  echo "deps: npm ci in bench/rules/nodered/" >&2
  (cd bench/rules/nodered && npm ci --silent --no-audit --no-fund >/dev/null)
fi
# The latency benchmark's Node-RED peer loop runs that Node-RED with the
# PostgreSQL client pg, pinned by bench/latency/nodered/package-lock.json.
if [ "$what" = bench ] && [ ! -d bench/latency/nodered/node_modules/pg ]; then
  echo "deps: npm ci in bench/latency/nodered/" >&2
  (cd bench/latency/nodered && npm ci --silent --no-audit --no-fund >/dev/null)
fi
exit 0
