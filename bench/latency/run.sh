#!/usr/bin/env bash
# bench/latency/run.sh -- end-to-end latency with `weir probe`, weir next to
# the peer loop of the industrial cloud-database paper (Mosquitto + an
# application writing to PostgreSQL + a trigger NOTIFY listener publishing
# back: bench/latency/peer.py). Leaves bench/out/latency.md and
# bench/out/latency-<target>-<scenario>.json.
#
# Scenarios (SCENARIOS): small = 10 devices x 1 msg/s, large = 500 devices x
# 10 msg/s, each for DURATION seconds (default 20). weir: direct path (LPS),
# through storage pushed on commit (live feed) and polled every POLL_MS
# (default 100), stream sync SYNC (default interval=5ms). Peer: Mosquitto's
# direct path (LPS) and the loop through PostgreSQL (synchronous_commit on,
# its default). Everything on loopback, one clock.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-$root/bench/out}
weir=${WEIR:-$root/build/weir}
DURATION=${DURATION:-20}
POLL_MS=${POLL_MS:-100}
SYNC=${SYNC:-interval=5ms}
SCENARIOS=${SCENARIOS:-"small large"}
PY=/usr/bin/python3
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$out"
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

# PostgreSQL: a private cluster on a unix socket in $work.
mkdir -p "$work/pg" "$work/pgsock"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg" "$work/pgsock"
as_pg "$PGBIN/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
pgport=$(free_port)
as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pgsock/pg.log" -w \
  -o "-p $pgport -k $work/pgsock -c listen_addresses=''" start >/dev/null
dsn="host=$work/pgsock port=$pgport user=postgres dbname=postgres"

# Mosquitto, the peer application, weir.
mport=$(free_port)
mosquitto -p "$mport" >"$work/mosquitto.log" 2>&1 & pids+=($!)
sleep 0.3
$PY "$here/peer.py" --mqtt "127.0.0.1:$mport" --dsn "$dsn" >"$work/peer.log" 2>&1 & pids+=($!)
wport=$(free_port); hport=$(free_port)
"$weir" serve --data "$work/weir" --mqtt "127.0.0.1:$wport" --http "127.0.0.1:$hport" \
  --log-level warn >"$work/weir.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  grep -q "peer: ready" "$work/peer.log" 2>/dev/null && curl -sf "127.0.0.1:$hport/healthz" >/dev/null && break
  sleep 0.1
done

for sc in $SCENARIOS; do
  case $sc in
    small) devices=10; rate=1 ;;
    large) devices=500; rate=10 ;;
    *) echo "latency: unknown scenario $sc" >&2; exit 2 ;;
  esac
  echo "latency: $sc: weir ($devices devices x $rate msg/s x ${DURATION}s)" >&2
  "$weir" probe --mqtt "127.0.0.1:$wport" --http "http://127.0.0.1:$hport" --devices $devices \
    --rate $rate --duration "$DURATION" --sync "$SYNC" --poll "$POLL_MS" --json --no-post \
    --drain 30 >"$out/latency-weir-$sc.json"
  echo "latency: $sc: mosquitto + postgresql" >&2
  "$weir" probe --mqtt "127.0.0.1:$mport" --paths direct --loop-topic 'peer-loop/#' \
    --devices $devices --rate $rate --duration "$DURATION" --json --no-post --drain 30 \
    >"$out/latency-peer-$sc.json"
done
$PY "$here/report.py" "$out" $SCENARIOS >"$out/latency.md"
cat "$out/latency.md"
