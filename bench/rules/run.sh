#!/usr/bin/env bash
# bench/rules/run.sh -- continuous rules: the per-device 5 s hopping-by-1 s
# average of DESIGN.md,
#
#   CREATE RULE climate AS SELECT device, avg(temperature) AS t_avg
#     FROM readings GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s)
#     EMIT TO 'mqtt:alerts/{device}/climate'
#
# measured three ways (results: $OUT_DIR/rules.md and rules.json, raw JSON
# lines in $OUT_DIR/rules-raw/):
#
#  engine    engine_bench.c: the compiled rule alone (engine/rule.h) fed
#            pre-decoded readings, 1 / 10 / 100 rules on one stream, on one
#            core; readings/s and state bytes per rule.
#  runtime   runtime.py: a weir node replays a stored stream through 1 / 10 /
#            100 running rules (read, decode once, push to every rule, MQTT
#            output); readings/s, state and RSS per rule.
#  e2e       e2e.c: publisher -> broker -> rule -> MQTT subscriber, paced at
#            each rate of E2E_RATES, against weir and against Mosquitto +
#            Node-RED running the same rule as a function node
#            (nodered/flows.json). Latency = result received minus the send
#            of the reading that closed its window; loss = results that did
#            not arrive within the drain. A fresh server per rate.
#
# Pinning: weir, Mosquitto + Node-RED and the engine driver on core
# $SERVER_CPU; the load generators (e2e, runtime.py) on core $LOADGEN_CPU.
#
# Settings (environment):
#   PARTS          engine runtime e2e              what to run
#   RULE_COUNTS    "1 10 100"                      rules on one stream
#   ENGINE_READINGS 2000000                        readings per engine run (/ rules, >= 200000)
#   RUNTIME_READINGS 1000000                       stored readings per runtime run (/ rules, >= 100000)
#   E2E_TARGETS    "weir nodered weir_fsync" (weir_fsync: the stream syncs
#                  every commit, as by default; rates up to 10,000 only)
#   E2E_RATES      "1000 2000 5000 10000 20000 50000 100000 200000"  readings/s;
#                  above 10000 stops at the first rate that does not keep up
#                  (a missing result, or p99 >= 1 s)
#   E2E_DURATION / E2E_WARMUP / E2E_DRAIN  6 / 2 / 2 seconds
#   DEVICES        100
#   SERVER_CPU / LOADGEN_CPU  0 / 1
#   NICE           unset; e.g. -5 (root) on a machine shared with other work
#   WEIR_BUILD     <repo>/build (release tree: weir and libweircore.a)
#   OUT_DIR        <repo>/bench/out
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PARTS=${PARTS:-"engine runtime e2e"}
RULE_COUNTS=${RULE_COUNTS:-"1 10 100"}
ENGINE_READINGS=${ENGINE_READINGS:-2000000}
RUNTIME_READINGS=${RUNTIME_READINGS:-1000000}
E2E_TARGETS=${E2E_TARGETS:-"weir nodered weir_fsync"}
E2E_RATES=${E2E_RATES:-"1000 2000 5000 10000 20000 50000 100000 200000"}
E2E_DURATION=${E2E_DURATION:-6}
E2E_WARMUP=${E2E_WARMUP:-2}
E2E_DRAIN=${E2E_DRAIN:-2}
DEVICES=${DEVICES:-100}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
WEIR_BUILD=${WEIR_BUILD:-$repo/build}
OUT_DIR=${OUT_DIR:-$repo/bench/out}
NICE=${NICE:-}
WEIR_BIN=$WEIR_BUILD/weir
MOSQUITTO_BIN=${MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
PY=/usr/bin/python3

raw="$OUT_DIR/rules-raw"
bin="$OUT_DIR/bin"
log() { printf 'bench/rules: %s\n' "$*" >&2; }
mkdir -p "$raw" "$bin"
rm -f "$raw"/rules.jsonl

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-bench-rules.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

stop() { # stop PID: TERM, up to 5 s, then KILL; forget it
  local p=$1 keep=() q
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

pin_server=() pin_loadgen=() pinning="no pinning"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c "$SERVER_CPU")
  pin_loadgen=(taskset -c "$LOADGEN_CPU")
  pinning="server (weir / Mosquitto + Node-RED / engine driver) on core $SERVER_CPU, load generator on core $LOADGEN_CPU"
fi
if [ -n "$NICE" ]; then
  pin_server=(nice -n "$NICE" "${pin_server[@]}")
  pin_loadgen=(nice -n "$NICE" "${pin_loadgen[@]}")
  pinning="$pinning, nice $NICE"
fi
pinning="$pinning; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo null; }

# ------------------------------------------------------------------ build

if [ ! -x "$WEIR_BIN" ] || [ ! -f "$WEIR_BUILD/libweircore.a" ]; then
  log "building $WEIR_BUILD (release)"
  cmake -S "$repo" -B "$WEIR_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$WEIR_BUILD" -j2 >/dev/null
fi
deps=$(pkg-config --libs libuv libwebsockets openssl sqlite3 libsodium jansson inih libzstd libxxhash libcurl)
# shellcheck disable=SC2086 # deps is a list of flags
cc -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -I"$repo/src" \
  "$here/engine_bench.c" "$WEIR_BUILD/libweircore.a" $deps -lm -lpthread -o "$bin/rules_engine_bench"
cc -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
  "$here/e2e.c" -lmosquitto -lm -lpthread -o "$bin/rules_e2e"

emit() { # emit PART JSON -> one raw line
  printf '{"part":"%s","result":%s}\n' "$1" "$2" >>"$raw/rules.jsonl"
}

# ----------------------------------------------------------------- engine

run_engine() {
  local r n out
  for r in $RULE_COUNTS; do
    n=$((ENGINE_READINGS / r))
    [ "$n" -ge 200000 ] || n=200000
    log "engine: $r rule(s), $n readings"
    out=$("${pin_server[@]}" "$bin/rules_engine_bench" -n "$n" -r "$r" -D "$DEVICES")
    emit engine "$out"
  done
}

# ---------------------------------------------------------------- servers

srv_pid="" srv_mqtt="" srv_http="" nr_pid=""

start_weir() { # start_weir DIR
  local dir=$1
  srv_mqtt=$(freeport)
  srv_http=$(freeport)
  mkdir -p "$dir"
  "${pin_server[@]}" "$WEIR_BIN" serve --data "$dir/data" --mqtt "127.0.0.1:$srv_mqtt" \
    --http "127.0.0.1:$srv_http" --log-level warn >"$dir/weir.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$srv_http/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  log "weir did not start: $(tail -n 3 "$dir/weir.log")"
  return 1
}

weir_rule() { # weir_rule SYNC: the e2e stream (from MQTT) and rule
  curl -fs -XPOST "http://127.0.0.1:$srv_http/api/v1/streams" -d \
    '{"name":"readings","source":"mqtt:readings/+","format":"json","key":"device","timestamp":"ts","time_format":"ms","partitions":1,"sync":"'"$1"'"}' >/dev/null
  curl -fs -XPOST "http://127.0.0.1:$srv_http/api/v1/rules" --data-binary \
    "CREATE RULE climate AS SELECT device, avg(temperature) AS t_avg FROM readings GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s) EMIT TO 'mqtt:alerts/{device}/climate'" >/dev/null
}

start_nodered() { # start_nodered DIR: Mosquitto + Node-RED with the flow
  local dir=$1
  srv_mqtt=$(freeport)
  mkdir -p "$dir/nr"
  {
    echo "listener $srv_mqtt 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "max_queued_messages 100000"
    echo "set_tcp_nodelay true"
    echo "log_dest stderr"
    echo "log_type error"
    [ "$(id -u)" -eq 0 ] && echo "user root"
  } >"$dir/mosquitto.conf"
  "${pin_server[@]}" "$MOSQUITTO_BIN" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  # Node-RED only once Mosquitto answers (its client retries slowly).
  for _ in $(seq 1 50); do
    mosquitto_sub -p "$srv_mqtt" -C 1 -W 1 -t '$SYS/broker/version' >/dev/null 2>&1 && break
    sleep 0.1
  done
  (cd "$here/nodered" && MQTT_PORT=$srv_mqtt NR_PORT=$(freeport) NR_USERDIR="$dir/nr" \
    exec "${pin_server[@]}" node node_modules/node-red/red.js --settings settings.js) \
    >"$dir/nodered.log" 2>&1 &
  nr_pid=$!
  pids+=("$nr_pid")
  # Ready when the flow answers: two probe readings far apart in event
  # time close a window and an alert comes back (e2e ignores the probe's).
  # Each attempt moves further in event time so that it closes windows
  # whatever the previous attempts left behind.
  local sub k
  for k in $(seq 1 30); do
    kill -0 "$nr_pid" 2>/dev/null || break
    mosquitto_sub -p "$srv_mqtt" -t 'alerts/probe/#' -C 1 -W 2 >/dev/null 2>&1 &
    sub=$!
    sleep 0.3
    mosquitto_pub -p "$srv_mqtt" -t readings/probe \
      -m "{\"device\":\"probe\",\"ts\":$((k * 20000)),\"temperature\":1}" 2>/dev/null || true
    mosquitto_pub -p "$srv_mqtt" -t readings/probe \
      -m "{\"device\":\"probe\",\"ts\":$((k * 20000 + 9000)),\"temperature\":1}" 2>/dev/null || true
    wait "$sub" && return 0
  done
  log "Node-RED did not connect: $(tail -n 3 "$dir/nodered.log")"
  return 1
}

# ---------------------------------------------------------------- runtime

run_runtime() {
  local r n out dir rss
  for r in $RULE_COUNTS; do
    n=$((RUNTIME_READINGS / r))
    [ "$n" -ge 100000 ] || n=100000
    dir="$work/runtime.$r"
    start_weir "$dir" || { emit runtime "{\"rules\":$r,\"error\":\"weir did not start\"}"; continue; }
    log "runtime: $r rule(s) over $n stored readings"
    if out=$("${pin_loadgen[@]}" $PY "$here/runtime.py" "$srv_http" "$r" "$n" "$DEVICES"); then
      rss=$(rss_kib "$srv_pid")
      emit runtime "${out%\}},\"node_rss_kib\":${rss:-null}}"
    else
      emit runtime "{\"rules\":$r,\"error\":$(printf '%s' "$out" | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read()[:300]))')}"
    fi
    stop "$srv_pid"
  done
}

# -------------------------------------------------------------------- e2e

e2e_keeps_up() { # e2e_keeps_up JSON: every result arrived, p99 < 1 s (one window advance)
  $PY -c 'import json,sys; r=json.loads(sys.argv[1]); l=r.get("lat_ms") or {}; sys.exit(0 if r.get("missing")==0 and l.get("p99",1e9)<1000 else 1)' "$1"
}

run_e2e() {
  local t rate dir out sync
  for t in $E2E_TARGETS; do
    if [ "$t" = nodered ] && [ ! -f "$here/nodered/node_modules/node-red/red.js" ]; then
      log "installing Node-RED (npm) under bench/rules/nodered"
      (cd "$here/nodered" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        { log "no Node-RED: skipping"; continue; }
    fi
    for rate in $E2E_RATES; do
      dir="$work/e2e.$t.$rate"
      mkdir -p "$dir"
      if [ "$t" = weir ] || [ "$t" = weir_fsync ]; then
        # weir_fsync: the stream's default sync=always (fsync before the
        # rule sees a record), only up to 10,000 readings/s.
        [ "$t" = weir_fsync ] && [ "$rate" -gt 10000 ] && break
        sync=none
        [ "$t" = weir_fsync ] && sync=always
        start_weir "$dir" && weir_rule "$sync" || { log "weir failed to start"; break; }
      else
        start_nodered "$dir" || { stop "$nr_pid"; stop "$srv_pid"; break; }
      fi
      log "e2e: $t at $rate readings/s"
      out=$("${pin_loadgen[@]}" "$bin/rules_e2e" -p "$srv_mqtt" --rate "$rate" --devices "$DEVICES" \
        --duration "$E2E_DURATION" --warmup "$E2E_WARMUP" --drain "$E2E_DRAIN" 2>"$dir/e2e.log") || true
      [ -n "$out" ] || out='{"error":"load generator failed"}'
      emit "e2e" "{\"target\":\"$t\",\"run\":$out}"
      [ "$t" = nodered ] && stop "$nr_pid"
      stop "$srv_pid"
      # Above 10,000/s go on while the target keeps up (the sustained rate):
      # nothing lost, p99 under one window advance.
      if [ "$rate" -gt 10000 ] && ! e2e_keeps_up "$out"; then
        break
      fi
    done
  done
}

log "parts: $PARTS; $pinning"
for part in $PARTS; do "run_$part"; done

nr_version=$(node -e 'console.log(require(process.argv[1]).version)' "$here/nodered/node_modules/node-red/package.json" 2>/dev/null || echo "")
weir_version=$("$WEIR_BIN" version 2>/dev/null | head -n 1 || true)
mosq_version=$("$MOSQUITTO_BIN" -h 2>/dev/null | head -n 1 || true)
node_version=$(node --version 2>/dev/null || true)
export BENCH_PINNING="$pinning" BENCH_DEVICES="$DEVICES" BENCH_E2E_DURATION="$E2E_DURATION" \
  BENCH_E2E_WARMUP="$E2E_WARMUP" BENCH_E2E_DRAIN="$E2E_DRAIN" BENCH_WEIR_VERSION="$weir_version" \
  BENCH_MOSQUITTO_VERSION="$mosq_version" BENCH_NODERED_VERSION="$nr_version" \
  BENCH_NODE_VERSION="$node_version"
$PY "$here/report.py" "$raw/rules.jsonl" "$OUT_DIR/rules.json" "$OUT_DIR/rules.md"
log "wrote $OUT_DIR/rules.md and $OUT_DIR/rules.json"
cat "$OUT_DIR/rules.md"
