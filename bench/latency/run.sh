#!/usr/bin/env bash
# bench/latency/run.sh -- end-to-end latency with `weir probe`, weir next to
# the peer loop of the industrial cloud-database paper, in the same run with
# the same probe timestamps. Leaves bench/out/latency.md and
# bench/out/latency-<target>-<scenario>.json (target: weir, nodered, python).
#
# The peer loop: the probe's devices publish to Mosquitto; a Node-RED flow
# (nodered/flows.json, Node-RED 4.1.8 from bench/rules/nodered) stamps T2,
# INSERTs each reading into PostgreSQL (autocommit, synchronous_commit on,
# its default) and stamps T3 when the INSERT returns; an AFTER INSERT
# trigger (schema.sql) pg_notify()s; the flow's LISTEN node stamps T4 and
# publishes the reading back through Mosquitto to the probe (T5, --loop-topic).
# PEERS adds "python": the same loop as peer.py (paho + psycopg2).
#
# Scenarios (SCENARIOS): small = 10 devices x 1 msg/s, large = 500 devices x
# 10 msg/s, each for DURATION seconds (default 20). weir: direct path (LPS),
# through storage pushed on commit (live feed) and polled every POLL_MS
# (default 100), stream sync SYNC (default interval=5ms). Peers: Mosquitto's
# direct path (LPS) and the loop through PostgreSQL. Everything on loopback,
# one clock (CLOCK_REALTIME; Node.js stamps via nodered/clock.js, checked by
# clockcheck.py).
#
# Pinning (as bench/rules): the systems under test (weir; Mosquitto, the peer
# application and PostgreSQL) on core SERVER_CPU (0), the probe on
# LOADGEN_CPU (1); NICE (e.g. -5 as root) for all of them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-${OUT_DIR:-$root/bench/out}}
weir=${WEIR:-$root/build/weir}
DURATION=${DURATION:-20}
POLL_MS=${POLL_MS:-100}
SYNC=${SYNC:-interval=5ms}
SCENARIOS=${SCENARIOS:-"small large"}
PEERS=${PEERS:-"nodered python"}
DRAIN=${DRAIN:-30}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
NICE=${NICE:-}
PY=/usr/bin/python3
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
NODERED=$root/bench/rules/nodered/node_modules/node-red/red.js
log() { printf 'latency: %s\n' "$*" >&2; }
mkdir -p "$out"

for p in $PEERS; do
  if [ "$p" = nodered ] && { [ ! -f "$NODERED" ] || [ ! -d "$here/nodered/node_modules/pg" ]; }; then
    log "Node-RED or pg missing: scripts/deps.sh bench (npm ci in bench/rules/nodered and bench/latency/nodered)"
    exit 2
  fi
done

pin_server=() pin_loadgen=() pinning="no pinning"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c "$SERVER_CPU")
  pin_loadgen=(taskset -c "$LOADGEN_CPU")
  pinning="systems under test on core $SERVER_CPU, probe on core $LOADGEN_CPU"
fi
if [ -n "$NICE" ]; then
  pin_server=(nice -n "$NICE" "${pin_server[@]}")
  pin_loadgen=(nice -n "$NICE" "${pin_loadgen[@]}")
  pinning="$pinning, nice $NICE"
fi

work=$(mktemp -d /tmp/weir-latency.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$work/pg/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg_pinned() {
  if [ "$(id -u)" -eq 0 ]; then "${pin_server[@]}" runuser -u postgres -- "$@"; else "${pin_server[@]}" "$@"; fi
}
stop() { # stop PID: TERM, up to 5 s, then KILL; forget it
  local p=$1 keep=() q
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for q in "${pids[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

# PostgreSQL: a private cluster on a unix socket in $work.
mkdir -p "$work/pg" "$work/pgsock"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg" "$work/pgsock"
as_pg "$PGBIN/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
pgport=$(free_port)
# nice before runuser: the postgres user may not lower its own niceness.
as_pg_pinned "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pgsock/pg.log" -w \
  -o "-p $pgport -k $work/pgsock -c listen_addresses=''" start >/dev/null
dsn="host=$work/pgsock port=$pgport user=postgres dbname=postgres"
PGOPTIONS="-c client_min_messages=warning" as_pg psql -q -h "$work/pgsock" -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -f "$here/schema.sql" >/dev/null

# Mosquitto (as bench/rules configures it: no Nagle, deep queues), weir.
mport=$(free_port)
{
  echo "listener $mport 127.0.0.1"
  echo "allow_anonymous true"
  echo "persistence false"
  echo "max_queued_messages 100000"
  echo "set_tcp_nodelay true"
  echo "log_dest stderr"
  echo "log_type error"
  [ "$(id -u)" -eq 0 ] && echo "user root"
} >"$work/mosquitto.conf"
"${pin_server[@]}" mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
wport=$(free_port); hport=$(free_port)
"${pin_server[@]}" "$weir" serve --data "$work/weir" --mqtt "127.0.0.1:$wport" \
  --http "127.0.0.1:$hport" --set auth.anonymous=true --log-level warn >"$work/weir.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  curl -sf "127.0.0.1:$hport/healthz" >/dev/null && mosquitto_sub -p "$mport" -C 1 -W 1 \
    -t '$SYS/broker/version' >/dev/null 2>&1 && break
  sleep 0.1
done

peer_pid=""
start_peer() { # start_peer nodered|python; ready once a reading comes back
  local p=$1 k sub
  case $p in
    nodered)
      mkdir -p "$work/nr"
      (cd "$here/nodered" && MQTT_PORT=$mport NR_PORT=$(free_port) NR_USERDIR="$work/nr" \
        PG_HOST="$work/pgsock" PG_PORT=$pgport \
        exec "${pin_server[@]}" node "$NODERED" --settings settings.js) >"$work/peer-$p.log" 2>&1 &
      ;;
    python)
      "${pin_server[@]}" $PY "$here/peer.py" --mqtt "127.0.0.1:$mport" --dsn "$dsn" \
        >"$work/peer-$p.log" 2>&1 &
      ;;
    *) log "unknown peer $p"; exit 2 ;;
  esac
  peer_pid=$!
  pids+=("$peer_pid")
  for k in $(seq 1 60); do
    kill -0 "$peer_pid" 2>/dev/null || break
    mosquitto_sub -p "$mport" -t 'peer-loop/ready' -C 1 -W 1 >/dev/null 2>&1 &
    sub=$!
    sleep 0.2
    mosquitto_pub -p "$mport" -q 1 -t weir-probe/ready/ready \
      -m "{\"device\":\"ready\",\"seq\":$k,\"t0\":0,\"t1\":0,\"pad\":\"\"}" 2>/dev/null || true
    if wait "$sub"; then return 0; fi
  done
  log "peer $p did not come up:"; cat "$work/peer-$p.log" >&2
  exit 1
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
log "$pinning; load average at start $load"
for sc in $SCENARIOS; do
  case $sc in
    small) devices=10; rate=1 ;;
    large) devices=500; rate=10 ;;
    *) log "unknown scenario $sc"; exit 2 ;;
  esac
  log "$sc: weir ($devices devices x $rate msg/s x ${DURATION}s)"
  "${pin_loadgen[@]}" "$weir" probe --mqtt "127.0.0.1:$wport" --http "http://127.0.0.1:$hport" \
    --devices $devices --rate $rate --duration "$DURATION" --sync "$SYNC" --poll "$POLL_MS" \
    --json --no-post --drain "$DRAIN" >"$out/latency-weir-$sc.json"
  for p in $PEERS; do
    log "$sc: mosquitto + $p + postgresql"
    start_peer "$p"
    "${pin_loadgen[@]}" "$weir" probe --mqtt "127.0.0.1:$mport" --paths direct \
      --loop-topic 'peer-loop/#' --devices $devices --rate $rate --duration "$DURATION" --json \
      --no-post --drain "$DRAIN" >"$out/latency-$p-$sc.json"
    stop "$peer_pid"
  done
done
printf '{"pinning":"%s","load_start":"%s","load_end":"%s","date":"%s"}\n' "$pinning" "$load" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u +%FT%TZ)" >"$out/latency-run.json"
$PY "$here/report.py" "$out" "$PEERS" $SCENARIOS >"$out/latency.md"
cat "$out/latency.md"
