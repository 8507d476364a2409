#!/usr/bin/env bash
# bench/mqtt/run.sh -- weir's MQTT broker against Mosquitto, same machine,
# same run, same load generator, 127.0.0.1 only.
#
# For every target broker and every scenario a fresh broker is started on a
# free port (so peak RSS is per scenario), pinned to core $BROKER_CPU, and
# bench/mqtt/loadgen (pinned to core $LOADGEN_CPU) drives it and samples the
# broker's /proc entries around the measured window. Raw results go to
# $OUT_DIR/mqtt-raw/, the summary to $OUT_DIR/mqtt.md and $OUT_DIR/mqtt.json
# (bench/mqtt/report.py). A target whose binary is missing or that does not
# answer MQTT (connect, subscribe, publish, receive) is skipped with a note.
#
# Settings (environment):
#   TARGETS       brokers to run, in order             "mosquitto weir"
#   SCENARIOS     fanin_qos0 fanin_qos1 fanout_qos0 latency_qos0 idle_conns
#                 (also available: fanin_qos0_tls, the QoS 0 fan-in over TLS:
#                 a throw-away CA and server certificate are made with openssl,
#                 both brokers serve MQTT over TLS with them, the generator
#                 verifies the certificate; compare it with fanin_qos0)
#   DURATION      measured seconds per scenario        10
#   WARMUP        unmeasured seconds before            1
#   FANIN_PUBS    publishers in the fan-in scenarios   8
#   FANOUT_SUBS   subscribers in the fan-out scenario  50
#   LATENCY_RATE  messages/s in the latency scenario   10000
#   IDLE_CONNS    connections in the idle scenario     10000
#   WEIR_BIN      weir binary                          <repo>/build/weir
#   WEIR_ARGS     extra flags for `weir serve`         see below
#   MOSQUITTO_BIN mosquitto binary                     mosquitto on PATH
#   BROKER_CPU / LOADGEN_CPU  cores to pin to          0 / 1
#   NICE          niceness for broker and generator    unset (no change); on a
#                 machine shared with other work, e.g. -5 (root) gives the
#                 benchmark precedence over it
#   OUT_DIR       where results go                     <repo>/bench/out
#   WEIR_AUTH     1: weir without anonymous access; the generator logs in as
#                 user "bench" (role viewer, one topic grant bench/# readwrite),
#                 so every CONNECT is a password check and every PUBLISH and
#                 SUBSCRIBE an ACL check through a grant (the costliest path of
#                 auth_check); compare with the default (anonymous) run   0
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

TARGETS=${TARGETS:-"mosquitto weir"}
SCENARIOS=${SCENARIOS:-"fanin_qos0 fanin_qos1 fanout_qos0 latency_qos0 idle_conns"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
FANIN_PUBS=${FANIN_PUBS:-8}
FANOUT_SUBS=${FANOUT_SUBS:-50}
LATENCY_RATE=${LATENCY_RATE:-10000}
IDLE_CONNS=${IDLE_CONNS:-10000}
WEIR_BIN=${WEIR_BIN:-$repo/build/weir}
# Logging at warn keeps per-connection log lines out of the measurement, as
# the generated Mosquitto config does; the queue limit matches Mosquitto's
# below so that QoS 1 fan-in is not decided by a default.
WEIR_ARGS=${WEIR_ARGS:-"--log-level warn --set mqtt.max_queued_messages=100000"}
MOSQUITTO_BIN=${MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
BROKER_CPU=${BROKER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
OUT_DIR=${OUT_DIR:-$repo/bench/out}
NICE=${NICE:-}

raw="$OUT_DIR/mqtt-raw"
loadgen="$OUT_DIR/bin/loadgen"
log() { printf 'bench/mqtt: %s\n' "$*" >&2; }

# ------------------------------------------------------------ housekeeping

work=$(mktemp -d "${TMPDIR:-/tmp}/weir-bench-mqtt.XXXXXX")
pids=()

# Every process this script starts is in `pids`; on any exit they are all
# stopped (TERM, then KILL after 3 s) and the scratch directory removed.
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
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

forget() { # forget PID: drop it from the list once it has been reaped
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

stop() { # stop PID: TERM, up to 5 s, then KILL
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  forget "$p"
}

# Pinning: broker and load generator on different cores when there are two.
pin_broker=() pin_loadgen=() pinning="no pinning"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_broker=(taskset -c "$BROKER_CPU")
  pin_loadgen=(taskset -c "$LOADGEN_CPU")
  pinning="broker on core $BROKER_CPU, load generator on core $LOADGEN_CPU"
else
  log "fewer than 2 cores or no taskset: not pinning (results will be noisier)"
fi
if [ -n "$NICE" ]; then
  pin_broker=(nice -n "$NICE" "${pin_broker[@]}")
  pin_loadgen=(nice -n "$NICE" "${pin_loadgen[@]}")
  pinning="$pinning, nice $NICE"
fi

# 10,000 connections need 10,000 descriptors in the broker. The soft limit
# goes up to the hard one; raising the hard one needs CAP_SYS_RESOURCE.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)

mkdir -p "$raw"
rm -f "$raw"/*.json "$raw"/*.conf
make -s -C "$here" OUT="$OUT_DIR/bin" >&2

# ------------------------------------------------------------------ brokers

broker_pid="" broker_port="" broker_note=""

# TLS scenarios (*_tls): a CA and a server certificate for 127.0.0.1, made
# once per run in the scratch directory.
tls=0
pki="$work/pki"
make_pki() {
  [ -f "$pki/server.pem" ] && return 0
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
      -out ca.pem -days 2 -subj "/CN=bench CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
      -out server.csr -subj "/CN=127.0.0.1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile san.ext
  ) >/dev/null 2>&1
}
tls_args() { [ "$tls" -eq 1 ] && echo "--cafile $pki/ca.pem"; return 0; }

start_mosquitto() { # start_mosquitto DIR PORT
  local dir=$1 port=$2
  {
    echo "# Generated by bench/mqtt/run.sh."
    echo "listener $port 127.0.0.1"
    if [ "$tls" -eq 1 ]; then
      echo "certfile $pki/server.pem"
      echo "keyfile $pki/server.key"
    fi
    echo "allow_anonymous true"
    echo "persistence false"
    # QoS 1 messages queued per client beyond the in-flight ones; the load
    # generator's window keeps it far below this, so nothing is dropped
    # for want of queue.
    echo "max_queued_messages 100000"
    # Nagle off, as on the clients' side: the latency scenario measures the
    # broker, not Nagle's algorithm waiting for an ACK.
    echo "set_tcp_nodelay true"
    echo "log_dest stderr"
    echo "log_type error"
    echo "log_type warning"
    # As root, mosquitto would switch to the 'mosquitto' user; stay as is.
    [ "$(id -u)" -eq 0 ] && echo "user root"
  } >"$dir/mosquitto.conf"
  cp "$dir/mosquitto.conf" "$raw/mosquitto.conf" # kept with the results, for reference
  "${pin_broker[@]}" "$MOSQUITTO_BIN" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
  broker_pid=$!
}

start_weir() { # start_weir DIR PORT
  local dir=$1 port=$2 http mqtt tlsopts=()
  http=$("$loadgen" freeport)
  mqtt=$port
  if [ "$tls" -eq 1 ]; then # PORT is the TLS listener's; plain MQTT elsewhere
    mqtt=$("$loadgen" freeport)
    tlsopts=(--set "tls.cert=$pki/server.pem" --set "tls.key=$pki/server.key"
      --set "mqtt.tls_listen=127.0.0.1:$port")
  fi
  local authopt=(--set auth.anonymous=true)
  if [ "${WEIR_AUTH:-0}" = 1 ]; then
    authopt=()
    echo "bench-password-0123" | "$WEIR_BIN" user add bench --role viewer --password-stdin \
      --data "$dir/data" >/dev/null
    "$WEIR_BIN" user grant --user bench topic 'bench/#' readwrite --data "$dir/data" >/dev/null
    export LOADGEN_USERNAME=bench LOADGEN_PASSWORD=bench-password-0123
  fi
  # shellcheck disable=SC2086 # WEIR_ARGS is a list of flags
  "${pin_broker[@]}" "$WEIR_BIN" serve --data "$dir/data" --mqtt "127.0.0.1:$mqtt" \
    --http "127.0.0.1:$http" "${tlsopts[@]}" "${authopt[@]}" $WEIR_ARGS >"$dir/broker.log" 2>&1 &
  broker_pid=$!
}

binary_of() {
  case $1 in
    mosquitto) echo "$MOSQUITTO_BIN" ;;
    weir) echo "$WEIR_BIN" ;;
  esac
}

# start_broker TARGET SCENARIO: starts it and waits (at most 10 s) until it
# answers MQTT. On failure sets broker_note and returns 1.
start_broker() {
  local target=$1 scen=$2 dir
  dir="$work/$target.$scen"
  mkdir -p "$dir"
  broker_port=$("$loadgen" freeport)
  tls=0
  case $scen in *_tls) tls=1; make_pki ;; esac
  "start_$target" "$dir" "$broker_port"
  pids+=("$broker_pid")
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$broker_pid" 2>/dev/null; then
      broker_note="exited at start-up: $(tail -n 3 "$dir/broker.log")"
      wait "$broker_pid" 2>/dev/null || true
      forget "$broker_pid"
      return 1
    fi
    # shellcheck disable=SC2046 # tls_args is a list of words
    if "${pin_loadgen[@]}" "$loadgen" probe -p "$broker_port" $(tls_args) --timeout 0.5 >/dev/null 2>"$dir/probe.log"; then
      return 0
    fi
    sleep 0.1
  done
  broker_note="does not answer MQTT on 127.0.0.1:$broker_port ($(tail -n 1 "$dir/probe.log" | sed 's/^loadgen: //'))"
  stop "$broker_pid"
  return 1
}

# ---------------------------------------------------------------- scenarios

# record TARGET SCENARIO STATUS NOTE [RESULT_JSON]
record() {
  local note
  note=$(printf '%s' "$4" | tr '\n\t' '  ' | tr -d '\000-\037')
  note=${note//\\/\\\\}
  note=${note//\"/\\\"}
  printf '{"target":"%s","scenario":"%s","status":"%s","note":"%s","result":%s}\n' \
    "$1" "$2" "$3" "$note" "${5:-null}" >"$raw/$1.$2.json"
}

traffic_args() { # the loadgen arguments of a traffic scenario
  case $1 in
    fanin_qos0) echo "fanin --pubs $FANIN_PUBS --qos 0" ;;
    fanin_qos0_tls) echo "fanin --pubs $FANIN_PUBS --qos 0 --cafile $pki/ca.pem" ;;
    fanin_qos1) echo "fanin --pubs $FANIN_PUBS --qos 1" ;;
    fanout_qos0) echo "fanout --subs $FANOUT_SUBS --qos 0" ;;
    latency_qos0) echo "latency --rate $LATENCY_RATE --qos 0" ;;
    *) return 1 ;;
  esac
}

run_traffic() { # run_traffic TARGET SCENARIO
  local target=$1 scen=$2 out lg args status=0
  out="$work/$target.$scen/loadgen.json"
  args=$(traffic_args "$scen")
  # shellcheck disable=SC2086 # args is a list of words
  timeout -k 5 $((DURATION + WARMUP + 60)) "${pin_loadgen[@]}" "$loadgen" $args \
    -p "$broker_port" -P "$broker_pid" -d "$DURATION" --warmup "$WARMUP" \
    >"$out" 2>"$work/$target.$scen/loadgen.log" &
  lg=$!
  pids+=("$lg")
  wait "$lg" || status=$?
  forget "$lg"
  if [ -s "$out" ]; then
    local note=""
    [ "$status" -eq 0 ] || note="load generator reported trouble: $(tail -n 2 "$work/$target.$scen/loadgen.log")"
    record "$target" "$scen" ok "$note" "$(head -n 1 "$out")"
  else
    record "$target" "$scen" failed "load generator failed (status $status): $(tail -n 2 "$work/$target.$scen/loadgen.log")"
  fi
}

status_kib() { # status_kib PID FIELD -> the value in kB of a /proc/PID/status field
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo null
}

cpu_seconds() { # utime + stime of PID, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

# Idle connections. libmosquitto spends three descriptors per client (the
# socket and a wake-up socket pair), so the connections are spread over as
# many load generators as the descriptor limit requires.
run_idle() { # run_idle TARGET SCENARIO
  local target=$1 scen=$2 dir per nproc left i k lgs=() ok=0 line rss0 rss hwm cpu0 cpu1 secs=0
  dir="$work/$target.$scen"
  per=$(((nofile - 64) / 3))
  nproc=$(((IDLE_CONNS + per - 1) / per))
  per=$(((IDLE_CONNS + nproc - 1) / nproc))
  rss0=$(status_kib "$broker_pid" VmRSS)
  left=$IDLE_CONNS
  for ((i = 0; i < nproc; i++)); do
    k=$((left < per ? left : per))
    left=$((left - k))
    "${pin_loadgen[@]}" "$loadgen" idle -p "$broker_port" --conns "$k" --hold 300 --timeout 120 \
      >"$dir/idle.$i.json" 2>"$dir/idle.$i.log" &
    lgs+=($!)
    pids+=($!)
  done
  # Ready when every generator printed its line (or exited); at most 150 s.
  for _ in $(seq 1 1500); do
    local ready=0
    for ((i = 0; i < nproc; i++)); do
      if [ -s "$dir/idle.$i.json" ] || ! kill -0 "${lgs[$i]}" 2>/dev/null; then
        ready=$((ready + 1))
      fi
    done
    [ "$ready" -eq "$nproc" ] && break
    sleep 0.1
  done
  for ((i = 0; i < nproc; i++)); do
    line=$(head -n 1 "$dir/idle.$i.json" 2>/dev/null || true)
    k=$(sed -n 's/.*"conns_ok":\([0-9]*\).*/\1/p' <<<"$line")
    ok=$((ok + ${k:-0}))
    # The generators connect side by side: the slowest one's time counts.
    k=$(sed -n 's/.*"connect_s":\([0-9.e+-]*\).*/\1/p' <<<"$line")
    secs=$(awk -v a="$secs" -v b="${k:-0}" 'BEGIN { print (b > a ? b : a) }')
  done
  # Let the broker finish whatever it does after CONNACK, then look, then
  # watch its CPU for 5 s of idleness (keep-alive is 60 s, so mostly timers).
  sleep 2
  rss=$(status_kib "$broker_pid" VmRSS)
  cpu0=$(cpu_seconds "$broker_pid")
  sleep 5
  cpu1=$(cpu_seconds "$broker_pid")
  hwm=$(status_kib "$broker_pid" VmHWM)
  for p in "${lgs[@]}"; do stop "$p"; done
  local result
  result=$(printf '{"mode":"idle","conns_requested":%d,"conns_ok":%d,"loadgen_processes":%d,"connect_s":%s,"broker_rss_before_kib":%s,"broker_rss_kib":%s,"broker_hwm_kib":%s,"broker_cpu_util":%s}' \
    "$IDLE_CONNS" "$ok" "$nproc" "$secs" "${rss0:-null}" "${rss:-null}" "${hwm:-null}" \
    "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.4f", (b - a) / 5 }')")
  if [ "$ok" -eq "$IDLE_CONNS" ]; then
    record "$target" "$scen" ok "" "$result"
  else
    record "$target" "$scen" ok "only $ok of $IDLE_CONNS connections succeeded: $(tail -n 1 "$dir/idle.0.log")" "$result"
  fi
}

# -------------------------------------------------------------------- main

log "targets: $TARGETS; scenarios: $SCENARIOS; ${DURATION}s each; $pinning; nofile $nofile"
for target in $TARGETS; do
  bin=$(binary_of "$target")
  if [ -z "$bin" ]; then
    log "unknown target '$target' (known: mosquitto weir)"
    continue
  fi
  skip=""
  if [ ! -x "$bin" ]; then
    skip="not available: $bin not found (build it with 'make build')"
  fi
  for scen in $SCENARIOS; do
    if [ -n "$skip" ]; then
      record "$target" "$scen" "not available" "$skip"
      continue
    fi
    log "$target: $scen"
    if ! start_broker "$target" "$scen"; then
      skip="not available: $broker_note"
      log "$target: $skip; skipping it"
      record "$target" "$scen" "not available" "$skip"
      continue
    fi
    if [ "$scen" = idle_conns ]; then
      run_idle "$target" "$scen"
    elif traffic_args "$scen" >/dev/null; then
      run_traffic "$target" "$scen"
    else
      log "unknown scenario '$scen'"
    fi
    stop "$broker_pid"
  done
done

# Keep the broker versions and settings next to the numbers.
mosq_version=$("$MOSQUITTO_BIN" -h 2>/dev/null | head -n 1 || true)
weir_version=""
if [ -x "$WEIR_BIN" ]; then
  weir_version=$("$WEIR_BIN" version 2>/dev/null | head -n 1 || true)
fi
export BENCH_PINNING="$pinning" BENCH_MOSQUITTO_VERSION="$mosq_version" \
  BENCH_WEIR_VERSION="$weir_version" BENCH_DURATION="$DURATION" BENCH_WARMUP="$WARMUP" \
  BENCH_FANIN_PUBS="$FANIN_PUBS" BENCH_FANOUT_SUBS="$FANOUT_SUBS" \
  BENCH_LATENCY_RATE="$LATENCY_RATE" BENCH_IDLE_CONNS="$IDLE_CONNS" BENCH_TARGETS="$TARGETS" \
  BENCH_SCENARIOS="$SCENARIOS" BENCH_WEIR_ARGS="$WEIR_ARGS"
python3 "$here/report.py" "$raw" "$OUT_DIR/mqtt.json" "$OUT_DIR/mqtt.md"
log "wrote $OUT_DIR/mqtt.md and $OUT_DIR/mqtt.json"
cat "$OUT_DIR/mqtt.md"
