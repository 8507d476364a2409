#!/usr/bin/env bash
# bench/ingest/run.sh -- how fast readings get into durable storage, and how
# fast a month-scale question comes back out: weir next to Redis Streams and
# InfluxDB 1.x, same machine, same run, same readings, 127.0.0.1 only.
#
# Steps (each result lands in $OUT_DIR/ingest-raw/<step>.json):
#   append    the store's batch API alone (bench/stream/append_bench.c),
#             sync none and interval, 4 partitions, reading-sized records
#   import    a generated CSV of $IMPORT_N readings through `weir import`
#   series    avg(temperature) per minute over those readings, $SERIES_RUNS
#             times (median), in weir and then in InfluxDB over the same points
#   mqtt_*    8 QoS 1 publishers into a durable stream (one run per sync in
#             $MQTT_SYNCS); PUBACKs counted by bench/mqtt/loadgen (ingest
#             mode) and compared with the stream's record count
#   http_*    $HTTP_N readings in batches of $HTTP_BATCH over $HTTP_CONNS
#             connections (bench/ingest/bulkload.c): weir NDJSON, weir line
#             protocol, Redis XADD pipelines, InfluxDB /write
# Every server is a fresh process on a free port with its data in a scratch
# directory, pinned to core $SERVER_CPU; every client is pinned to core
# $CLIENT_CPU. bench/ingest/report.py turns the raw files into
# $OUT_DIR/ingest.md and $OUT_DIR/ingest.json.
#
# Settings (environment):
#   STEPS          which steps             "append import mqtt http series"
#   IMPORT_N       readings in the CSV     10000000
#   HTTP_N         readings per bulk load  10000000 (= IMPORT_N: the InfluxDB
#                  series then runs over the same points as weir's)
#   APPEND_N       records per append run  10000000
#   APPEND_RUNS    runs per sync (median)  3
#   HTTP_BATCH     readings per request    5000
#   HTTP_CONNS     concurrent connections  4
#   HTTP_TARGETS   bulk targets            "weir_ndjson weir_line redis influxdb"
#   WEIR_SYNC      sync of weir's import and HTTP streams   interval=5ms
#   MQTT_SYNCS     one MQTT run per sync   "interval=5ms always"
#   MQTT_PUBS / MQTT_INFLIGHT              8 / 100 (unacknowledged per publisher)
#   MQTT_DURATION / MQTT_WARMUP            10 / 1 seconds
#   SERIES_RUNS    timed queries per system 3
#   WEIR_BIN       <repo>/build/weir       WEIR_ARGS  --log-level warn
#   REDIS_BIN      redis-server on PATH    INFLUXD_BIN  influxd on PATH
#   SERVER_CPU / CLIENT_CPU                0 / 1
#   NICE           niceness for servers and clients, unset = no change. With
#                  autogroup scheduling (Debian's default), niceness only
#                  orders processes of one session, so the script also sets
#                  its session's autogroup niceness (/proc/self/autogroup)
#                  and puts the old value back on exit.
#   OUT_DIR        <repo>/bench/out        TMPDIR  where scratch data goes
#                  (needs ~5 GB with the defaults)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

STEPS=${STEPS:-"append import mqtt http series"}
IMPORT_N=${IMPORT_N:-10000000}
HTTP_N=${HTTP_N:-$IMPORT_N}
APPEND_N=${APPEND_N:-10000000}
APPEND_RUNS=${APPEND_RUNS:-3}
HTTP_BATCH=${HTTP_BATCH:-5000}
HTTP_CONNS=${HTTP_CONNS:-4}
HTTP_TARGETS=${HTTP_TARGETS:-"weir_ndjson weir_line redis influxdb"}
WEIR_SYNC=${WEIR_SYNC:-interval=5ms}
MQTT_SYNCS=${MQTT_SYNCS:-"interval=5ms always"}
MQTT_PUBS=${MQTT_PUBS:-8}
MQTT_INFLIGHT=${MQTT_INFLIGHT:-100}
MQTT_DURATION=${MQTT_DURATION:-10}
MQTT_WARMUP=${MQTT_WARMUP:-1}
SERIES_RUNS=${SERIES_RUNS:-3}
WEIR_BIN=${WEIR_BIN:-$repo/build/weir}
WEIR_ARGS=${WEIR_ARGS:-"--log-level warn"}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}
INFLUXD_BIN=${INFLUXD_BIN:-$(command -v influxd || echo /usr/bin/influxd)}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT_DIR=${OUT_DIR:-$repo/bench/out}
NICE=${NICE:-}
PY=/usr/bin/python3

# The readings (bench/ingest/bulkload.c): 100 devices, one reading each
# every 6 s from T0, so N readings span N/100*6 s (10M: 10,000 minutes).
T0_MS=1732147200000
STEP_MS=6000
DEVICES=100

raw="$OUT_DIR/ingest-raw"
bin="$OUT_DIR/bin"
log() { printf 'bench/ingest: %s\n' "$*" >&2; }

# ------------------------------------------------------------ housekeeping

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-bench-ingest.XXXXXX")
pids=()
autogroup_old=""

# Every process this script starts is in `pids`; on any exit they are all
# stopped (TERM, then KILL after 3 s), the scratch directory is removed and
# the autogroup niceness restored.
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
  rm -rf "$work"
  if [ -n "$autogroup_old" ]; then echo "$autogroup_old" >/proc/self/autogroup 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

forget() { # forget PID: drop it from the list once it has been reaped
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

stop() { # stop PID: TERM, up to 10 s (a store flushes on exit), then KILL
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  forget "$p"
}

# run_client SECONDS OUT ERR CMD...: a pinned client, bounded in time,
# stopped with the others if the script is interrupted. Returns its status.
run_client() {
  local limit=$1 out=$2 err=$3 p status=0
  shift 3
  timeout -k 5 "$limit" "${pin_client[@]}" "$@" >"$out" 2>"$err" &
  p=$!
  pids+=("$p")
  wait "$p" || status=$?
  forget "$p"
  return "$status"
}

pin_server=() pin_client=() pinning="no pinning"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c "$SERVER_CPU")
  pin_client=(taskset -c "$CLIENT_CPU")
  pinning="servers on core $SERVER_CPU, clients on core $CLIENT_CPU"
else
  log "fewer than 2 cores or no taskset: not pinning (results will be noisier)"
fi
if [ -n "$NICE" ]; then
  pin_server=(nice -n "$NICE" "${pin_server[@]}")
  pin_client=(nice -n "$NICE" "${pin_client[@]}")
  pinning="$pinning, nice $NICE"
  if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 0)" = 1 ] &&
    old=$(awk '{print $3}' /proc/self/autogroup 2>/dev/null) && [ -n "$old" ]; then
    if echo "$NICE" >/proc/self/autogroup 2>/dev/null; then
      autogroup_old=$old
      pinning="$pinning (and session autogroup nice $NICE)"
    else
      log "cannot set the autogroup niceness; NICE only orders this session's processes"
    fi
  fi
fi

mkdir -p "$raw" "$bin"
rm -f "$raw"/*.json "$raw"/*.txt
make -s -C "$repo/bench/mqtt" OUT="$bin" >&2
loadgen="$bin/loadgen"
cc -std=c17 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -o "$bin/bulkload" "$here/bulkload.c" -lpthread
bulkload="$bin/bulkload"

# record STEP STATUS NOTE [RESULT_JSON]
record() {
  local note
  note=$(printf '%s' "$3" | tr '\n\t' '  ' | tr -d '\000-\037')
  note=${note//\\/\\\\}
  note=${note//\"/\\\"}
  printf '{"step":"%s","status":"%s","note":"%s","result":%s}\n' \
    "$1" "$2" "$note" "${4:-null}" >"$raw/$1.json"
}

cpu_seconds() { # utime + stime of PID (all threads), in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

hwm_kib() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo null; }

json_field() { # json_field KEY < JSON: a top-level number or string
  $PY -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"
}

want() { [[ " $STEPS " == *" $1 "* ]]; }

# ------------------------------------------------------------------- servers

server_pid="" server_port="" server_note=""

# wait_http URL SECONDS: until URL answers 2xx (or the server exits).
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$server_pid" 2>/dev/null || return 1
    curl -sf -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.1
  done
  return 1
}

# start_weir NAME: a fresh weir on free ports; sets server_pid, server_port
# (HTTP) and weir_mqtt. Returns 1 with server_note set on failure.
start_weir() {
  local dir="$work/weir.$1"
  mkdir -p "$dir"
  server_port=$("$loadgen" freeport)
  weir_mqtt=$("$loadgen" freeport)
  if [ ! -x "$WEIR_BIN" ]; then
    server_note="not available: $WEIR_BIN not found (build it with 'make build')"
    return 1
  fi
  # shellcheck disable=SC2086 # WEIR_ARGS is a list of flags
  "${pin_server[@]}" "$WEIR_BIN" serve --data "$dir/data" --mqtt "127.0.0.1:$weir_mqtt" \
    --http "127.0.0.1:$server_port" --set auth.anonymous=true $WEIR_ARGS >"$dir/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  if ! wait_http "http://127.0.0.1:$server_port/healthz" 10; then
    server_note="weir did not answer on 127.0.0.1:$server_port: $(tail -n 3 "$dir/server.log")"
    stop "$server_pid"
    return 1
  fi
}

# define_stream NAME JSON: POST a stream definition to the running weir.
define_stream() {
  local code
  code=$(curl -s -o "$work/define.out" -w '%{http_code}' --max-time 10 \
    -XPOST "http://127.0.0.1:$server_port/api/v1/streams" -d "$2")
  if [ "$code" != 200 ] && [ "$code" != 201 ]; then
    server_note="stream definition refused (HTTP $code): $(head -c 300 "$work/define.out")"
    return 1
  fi
}

stream_records() { # stream_records NAME: the stream's record count
  curl -s --max-time 30 "http://127.0.0.1:$server_port/api/v1/streams/$1" | json_field records
}

start_redis() {
  local dir="$work/redis"
  mkdir -p "$dir"
  server_port=$("$loadgen" freeport)
  if [ ! -x "$REDIS_BIN" ]; then
    server_note="not available: $REDIS_BIN not found (apt-get install redis-server)"
    return 1
  fi
  {
    echo "# Generated by bench/ingest/run.sh."
    echo "bind 127.0.0.1"
    echo "port $server_port"
    echo "dir $dir"
    echo "daemonize no"
    # Durability: every write goes to the append-only file; fsync once a
    # second (a crash or power cut may lose up to ~1-2 s of acknowledged
    # writes). No RDB snapshots: the AOF is the persistence. AOF rewrites
    # stay at their defaults (100% growth, 64 MB minimum).
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo "save \"\""
    echo "logfile \"\""
    echo "loglevel warning"
  } >"$dir/redis.conf"
  cp "$dir/redis.conf" "$raw/redis.conf.txt"
  "${pin_server[@]}" "$REDIS_BIN" "$dir/redis.conf" >"$dir/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$server_pid" 2>/dev/null || break
    if printf 'PING\r\n' | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$server_port; cat >&3; head -c 7 <&3" 2>/dev/null | grep -q PONG; then
      return 0
    fi
    sleep 0.1
  done
  server_note="redis did not answer on 127.0.0.1:$server_port: $(tail -n 3 "$dir/server.log")"
  stop "$server_pid"
  return 1
}

start_influxdb() {
  local dir="$work/influxdb" rpc
  mkdir -p "$dir"
  server_port=$("$loadgen" freeport)
  rpc=$("$loadgen" freeport)
  if [ ! -x "$INFLUXD_BIN" ]; then
    server_note="not available: $INFLUXD_BIN not found (apt-get install influxdb influxdb-client)"
    return 1
  fi
  {
    echo "# Generated by bench/ingest/run.sh; everything not here is influxd's default."
    echo "reporting-disabled = true"
    echo "bind-address = \"127.0.0.1:$rpc\""
    echo "[meta]"
    echo "  dir = \"$dir/meta\""
    echo "[data]"
    echo "  dir = \"$dir/data\""
    echo "  wal-dir = \"$dir/wal\""
    # wal-fsync-delay stays at its default, 0s: a write is answered (204)
    # after the WAL is fsynced; concurrent writes share an fsync.
    echo "  query-log-enabled = false"
    echo "[monitor]"
    echo "  store-enabled = false"
    echo "[http]"
    echo "  bind-address = \"127.0.0.1:$server_port\""
    echo "  log-enabled = false"
    echo "[logging]"
    echo "  level = \"warn\""
  } >"$dir/influxdb.conf"
  cp "$dir/influxdb.conf" "$raw/influxdb.conf.txt"
  "${pin_server[@]}" "$INFLUXD_BIN" run -config "$dir/influxdb.conf" >"$dir/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  if ! wait_http "http://127.0.0.1:$server_port/ping" 20; then
    server_note="influxd did not answer on 127.0.0.1:$server_port: $(tail -n 3 "$dir/server.log")"
    stop "$server_pid"
    return 1
  fi
  curl -sf -o /dev/null --max-time 10 -XPOST "http://127.0.0.1:$server_port/query" \
    --data-urlencode 'q=CREATE DATABASE bench' || {
    server_note="influxd refused CREATE DATABASE"
    stop "$server_pid"
    return 1
  }
}

# ---------------------------------------------------------------- the steps

step_append() {
  log "append: store batch API, $APPEND_N records per run"
  local ab="$bin/append_bench"
  # As bench/stream/run.sh builds it: plain cc against the store's sources.
  # shellcheck disable=SC2046
  if ! cc -std=c17 -O2 -g -D_GNU_SOURCE -I"$repo/src" -o "$ab" \
    "$repo/bench/stream/append_bench.c" "$repo"/src/stream/*.c \
    "$repo"/src/base/err.c "$repo"/src/base/crc32c.c "$repo"/src/base/wlog.c \
    "$repo"/src/base/fileio.c $(pkg-config --cflags --libs libuv libxxhash) -lpthread \
    2>"$work/append.build.log"; then
    record append_none failed "append_bench does not build: $(tail -n 3 "$work/append.build.log")"
    record append_interval failed "append_bench does not build"
    return
  fi
  # 3-byte key ("p07") and 70-byte value: the size of an encoded reading.
  # A run takes 1-3 s, so each sync runs $APPEND_RUNS times; the report
  # takes the median.
  local sync i out lines
  for sync in none interval; do
    lines=""
    for ((i = 0; i < APPEND_RUNS; i++)); do
      if out=$(timeout -k 5 300 "${pin_server[@]}" "$ab" -n "$APPEND_N" -b 100 -p 4 -k 3 -v 70 \
        -s "$sync" -i 5 -d "$work" 2>"$work/append.$sync.log"); then
        lines="$lines$out"$'\n'
      else
        log "append_bench -s $sync failed: $(tail -n 2 "$work/append.$sync.log")"
      fi
    done
    if [ -z "$lines" ]; then
      record "append_$sync" failed "append_bench failed: $(tail -n 2 "$work/append.$sync.log")"
      continue
    fi
    record "append_$sync" ok "" "$($PY -c '
import json, sys
runs = []
for line in sys.argv[1].splitlines():
    d = {}
    for kv in line.split():
        k, _, v = kv.partition("=")
        for conv in (int, float, str):
            try:
                d[k] = conv(v)
                break
            except ValueError:
                pass
    runs.append(d)
med = sorted(runs, key=lambda d: d["records_per_s"])[(len(runs) - 1) // 2]
out = dict(med)
out["runs"] = len(runs)
out["runs_records_per_s"] = [d["records_per_s"] for d in runs]
print(json.dumps(out))' "$lines")"
  done
}

csv=""
gen_csv() {
  csv="$work/readings.csv"
  log "generating $IMPORT_N readings into $csv"
  local t0=$SECONDS
  "${pin_client[@]}" "$bulkload" gen csv "$csv" -n "$IMPORT_N" --devices "$DEVICES" \
    --t0 "$T0_MS" --step "$STEP_MS"
  gen_s=$((SECONDS - t0))
}

# The series of weir and InfluxDB cover [T0, T0 + span), span rounded up to
# whole minutes.
series_from=$T0_MS
# shellcheck disable=SC2017 # readings per device: an integer on purpose
series_to=$((T0_MS + (((IMPORT_N + DEVICES - 1) / DEVICES * STEP_MS + 59999) / 60000) * 60000))

# time_query NAME URL [CURL ARGS...]: $SERIES_RUNS timed GETs; writes the
# times and the last answer to $work/NAME.*
time_query() {
  local name=$1 url=$2 i t
  shift 2
  : >"$work/$name.times"
  for ((i = 0; i < SERIES_RUNS; i++)); do
    t=$("${pin_client[@]}" curl -s -o "$work/$name.answer" -w '%{http_code} %{time_total}' \
      --max-time 120 "$@" "$url") || t="000 0"
    echo "$t" >>"$work/$name.times"
  done
}

step_import_and_series() {
  if ! start_weir import; then
    record import "not available" "$server_note"
    record series_weir "not available" "$server_note"
    return
  fi
  if ! define_stream imported "{\"name\":\"imported\",\"format\":\"csv\",\"key\":\"device\",\"timestamp\":\"ts\",\"time_format\":\"ms\",\"partitions\":4,\"sync\":\"$WEIR_SYNC\"}"; then
    record import failed "$server_note"
    stop "$server_pid"
    return
  fi
  local size cpu0 cpu1 out status=0 records
  size=$(stat -c %s "$csv")
  log "import: weir import of $(numfmt --to=iec "$size") ($IMPORT_N readings), sync $WEIR_SYNC"
  cpu0=$(cpu_seconds "$server_pid")
  run_client 900 "$work/import.out" "$work/import.err" "$WEIR_BIN" import "$csv" \
    --stream imported --url "http://127.0.0.1:$server_port" || status=$?
  cpu1=$(cpu_seconds "$server_pid")
  records=$(stream_records imported)
  out=$(head -n 1 "$work/import.out")
  if [ -n "$out" ]; then
    record import ok "$([ "$status" = 0 ] || echo "weir import exited $status: $(tail -n 2 "$work/import.err")")" \
      "$($PY -c '
import json, sys
d = json.loads(sys.argv[1])
d.update(file_bytes=int(sys.argv[2]), readings=int(sys.argv[3]), stream_records=int(sys.argv[4] or 0),
         server_cpu_s=float(sys.argv[6]) - float(sys.argv[5]), gen_s=int(sys.argv[7]), sync=sys.argv[8])
d["server_cpu_s_per_million"] = d["server_cpu_s"] / d["accepted"] * 1e6 if d["accepted"] else None
print(json.dumps(d))' "$out" "$size" "$IMPORT_N" "${records:-0}" "$cpu0" "$cpu1" "$gen_s" "$WEIR_SYNC")"
  else
    record import failed "weir import failed (status $status): $(tail -n 3 "$work/import.err")"
  fi
  if want series; then
    log "series: weir, avg(temperature) per minute over $records records, $SERIES_RUNS runs"
    cpu0=$(cpu_seconds "$server_pid")
    time_query weir_series "http://127.0.0.1:$server_port/api/v1/streams/imported/series?field=temperature&every=1m&agg=avg&from=$series_from&to=$series_to"
    cpu1=$(cpu_seconds "$server_pid")
    record series_weir ok "" "$($PY "$here/series.py" weir "$work/weir_series.times" "$work/weir_series.answer" "$records" "$cpu0" "$cpu1")"
    cp "$work/weir_series.answer" "$work/weir_series.keep"
  fi
  stop "$server_pid"
}

step_mqtt() {
  local sync name out status records
  for sync in $MQTT_SYNCS; do
    name="mqtt_${sync%%=*}"
    log "$name: $MQTT_PUBS QoS 1 publishers into a stream with sync $sync, ${MQTT_DURATION}s"
    if ! start_weir "$name"; then
      record "$name" "not available" "$server_note"
      continue
    fi
    if ! define_stream s "{\"name\":\"s\",\"source\":\"mqtt:bench/+/reading\",\"format\":\"json\",\"key\":\"device\",\"timestamp\":\"ts\",\"time_format\":\"ms\",\"partitions\":4,\"sync\":\"$sync\"}"; then
      record "$name" failed "$server_note"
      stop "$server_pid"
      continue
    fi
    status=0
    run_client $((MQTT_DURATION + MQTT_WARMUP + 60)) "$work/$name.out" "$work/$name.err" \
      "$loadgen" ingest --pubs "$MQTT_PUBS" --qos 1 --inflight "$MQTT_INFLIGHT" \
      --topic 'bench/{p}/reading' -p "$weir_mqtt" -P "$server_pid" -d "$MQTT_DURATION" \
      --warmup "$MQTT_WARMUP" || status=$?
    # The stream's count after every PUBACK arrived (the load generator
    # drained them) is the number of durable records; it must equal the
    # PUBACKs over the whole run, warm-up and drain included.
    records=$(stream_records s)
    out=$(head -n 1 "$work/$name.out")
    if [ -n "$out" ]; then
      record "$name" ok "$([ "$status" = 0 ] || echo "load generator reported trouble: $(tail -n 2 "$work/$name.err")")" \
        "$($PY -c '
import json, sys
d = json.loads(sys.argv[1])
d.update(sync=sys.argv[2], stream_records=int(sys.argv[3] or 0), inflight=int(sys.argv[4]))
print(json.dumps(d))' "$out" "$sync" "${records:-0}" "$MQTT_INFLIGHT")"
    else
      record "$name" failed "load generator failed (status $status): $(tail -n 3 "$work/$name.err")"
    fi
    stop "$server_pid"
  done
}

# http_load NAME ARGS...: one bulkload run against the running server.
http_load() {
  local name=$1 status=0 out hwm
  shift
  run_client 1200 "$work/$name.out" "$work/$name.err" "$bulkload" send -p "$server_port" \
    -P "$server_pid" -n "$HTTP_N" -b "$HTTP_BATCH" -c "$HTTP_CONNS" --devices "$DEVICES" \
    --t0 "$T0_MS" --step "$STEP_MS" "$@" || status=$?
  hwm=$(hwm_kib "$server_pid")
  out=$(head -n 1 "$work/$name.out")
  if [ -n "$out" ]; then
    http_result=$($PY -c '
import json, sys
d = json.loads(sys.argv[1])
d["server_hwm_kib"] = int(sys.argv[2]) if sys.argv[2].isdigit() else None
print(json.dumps(d))' "$out" "$hwm")
    http_note=""
    [ "$status" = 0 ] || http_note="bulkload exited $status: $(tail -n 2 "$work/$name.err")"
    return 0
  fi
  http_note="bulkload failed (status $status): $(tail -n 3 "$work/$name.err")"
  return 1
}

step_http() {
  local t name fmt stream def records extra
  for t in $HTTP_TARGETS; do
    name="http_$t"
    log "$name: $HTTP_N readings, batches of $HTTP_BATCH, $HTTP_CONNS connections"
    case $t in
      weir_ndjson | weir_line)
        fmt=${t#weir_}
        stream=$fmt
        if [ "$fmt" = ndjson ]; then
          def="{\"name\":\"$stream\",\"format\":\"json\",\"key\":\"device\",\"timestamp\":\"ts\",\"time_format\":\"ms\",\"partitions\":4,\"sync\":\"$WEIR_SYNC\"}"
        else # line protocol carries its own nanosecond timestamp
          def="{\"name\":\"$stream\",\"format\":\"line\",\"key\":\"device\",\"partitions\":4,\"sync\":\"$WEIR_SYNC\"}"
        fi
        if ! start_weir "$name"; then
          record "$name" "not available" "$server_note"
          continue
        fi
        if ! define_stream "$stream" "$def"; then
          record "$name" failed "$server_note"
          stop "$server_pid"
          continue
        fi
        if http_load "$name" --proto http --format "$fmt" --path "/api/v1/streams/$stream/records"; then
          records=$(stream_records "$stream")
          extra=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(stored=int(sys.argv[2] or 0), durability=sys.argv[3]); print(json.dumps(d))' \
            "$http_result" "${records:-0}" "weir sync=$WEIR_SYNC: answered after fdatasync")
          record "$name" ok "$http_note" "$extra"
        else
          record "$name" failed "$http_note"
        fi
        stop "$server_pid"
        ;;
      redis)
        if ! start_redis; then
          record "$name" "not available" "$server_note"
          continue
        fi
        if http_load "$name" --proto redis --key readings; then
          records=$(printf 'XLEN readings\r\n' | timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$server_port; cat >&3; head -n 1 <&3" | tr -dc '0-9')
          extra=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(stored=int(sys.argv[2] or 0), durability=sys.argv[3], version=sys.argv[4]); print(json.dumps(d))' \
            "$http_result" "${records:-0}" "appendonly yes, appendfsync everysec: answered before fsync" \
            "$("$REDIS_BIN" --version | head -n 1)")
          record "$name" ok "$http_note" "$extra"
        else
          record "$name" failed "$http_note"
        fi
        stop "$server_pid"
        ;;
      influxdb)
        if ! start_influxdb; then
          record "$name" "not available" "$server_note"
          record series_influxdb "not available" "$server_note"
          continue
        fi
        if http_load "$name" --proto http --format line --path "/write?db=bench"; then
          records=$(curl -s --max-time 120 -G "http://127.0.0.1:$server_port/query" --data-urlencode db=bench \
            --data-urlencode 'q=SELECT count(seq) FROM reading' | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["results"][0]["series"][0]["values"][0][1])' 2>/dev/null || echo 0)
          extra=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(stored=int(sys.argv[2] or 0), durability=sys.argv[3], version=sys.argv[4]); print(json.dumps(d))' \
            "$http_result" "${records:-0}" "WAL, wal-fsync-delay 0s (default): answered after fsync" \
            "$("$INFLUXD_BIN" version 2>/dev/null | head -n 1)")
          record "$name" ok "$http_note" "$extra"
          if want series; then
            local cpu0 cpu1
            log "series: InfluxDB, mean(temperature) GROUP BY time(1m) over $records points, $SERIES_RUNS runs"
            cpu0=$(cpu_seconds "$server_pid")
            time_query influx_series "http://127.0.0.1:$server_port/query" -G --data-urlencode db=bench \
              --data-urlencode epoch=ms --data-urlencode \
              "q=SELECT mean(temperature) FROM reading WHERE time >= ${series_from}ms AND time < ${series_to}ms GROUP BY time(1m)"
            cpu1=$(cpu_seconds "$server_pid")
            record series_influxdb ok "" "$($PY "$here/series.py" influxdb "$work/influx_series.times" "$work/influx_series.answer" "$records" "$cpu0" "$cpu1" "$work/weir_series.keep")"
          fi
        else
          record "$name" failed "$http_note"
        fi
        stop "$server_pid"
        ;;
      *) log "unknown HTTP target '$t' (known: weir_ndjson weir_line redis influxdb)" ;;
    esac
  done
}

# -------------------------------------------------------------------- main

log "steps: $STEPS; $pinning; import $IMPORT_N, HTTP $HTTP_N x $HTTP_CONNS conns in batches of $HTTP_BATCH"
started=$SECONDS
want append && step_append
if want import || want series; then
  gen_csv
  step_import_and_series
  rm -f "$csv"
fi
want mqtt && step_mqtt
want http && step_http

weir_version=""
[ -x "$WEIR_BIN" ] && weir_version=$("$WEIR_BIN" version 2>/dev/null | head -n 1 || true)
export BENCH_PINNING="$pinning" BENCH_WEIR_VERSION="$weir_version" BENCH_IMPORT_N="$IMPORT_N" \
  BENCH_HTTP_N="$HTTP_N" BENCH_APPEND_N="$APPEND_N" BENCH_APPEND_RUNS="$APPEND_RUNS" \
  BENCH_HTTP_BATCH="$HTTP_BATCH" \
  BENCH_HTTP_CONNS="$HTTP_CONNS" BENCH_WEIR_SYNC="$WEIR_SYNC" BENCH_MQTT_PUBS="$MQTT_PUBS" \
  BENCH_MQTT_INFLIGHT="$MQTT_INFLIGHT" BENCH_MQTT_DURATION="$MQTT_DURATION" \
  BENCH_SERIES_RUNS="$SERIES_RUNS" BENCH_STEPS="$STEPS" BENCH_WEIR_ARGS="$WEIR_ARGS" \
  BENCH_TOTAL_S=$((SECONDS - started))
$PY "$here/report.py" "$raw" "$OUT_DIR/ingest.json" "$OUT_DIR/ingest.md"
log "wrote $OUT_DIR/ingest.md and $OUT_DIR/ingest.json in $((SECONDS - started)) s"
cat "$OUT_DIR/ingest.md"
