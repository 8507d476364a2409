"""Rules on real recorded data, checked against an independent computation
in Python over the same rows.

UCI "Appliances energy prediction" (demo/data, in the repository): one row
every 10 minutes with the temperature T1..T9 and humidity RH_1..RH_9 of nine
rooms. Each row becomes nine MQTT messages, one per room (one device per
room), with the event time taken from the `date` column. The time axis is
compressed 1200 times (10 minutes -> 500 ms, relative to the first row) so
that 5 s hopping windows hold ten readings each and the test stays short.

DEBS 2012 Grand Challenge (an excerpt in tests/data, xz-compressed): the
manufacturing equipment's power phases mf01..mf03 at ~100 Hz; a rule
computes every second the average and the relative variation
(max - min) / avg of each.

Valve delay detection on a generated sequence: a sensor reports a valve
command and the valve reports reaching its position; a JOIN finds the pairs
and their delay, and the rule flags delays over a threshold. The delays are
chosen, so the expected alerts are known exactly.
"""

import csv
import io
import json
import lzma
import os
import threading
from datetime import datetime, timezone

import paho.mqtt.client as paho
import pytest

from conftest import SRC, TARGET, wait_for
from rules_util import api, create_rule, define, derived, post_ndjson, rule

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: rules")

UCI = os.path.join(SRC, "demo", "data", "uci_appliances_energydata_complete.csv.xz")
DEBS = os.path.join(SRC, "tests", "data", "debs2012_first6000.tsv.xz")
BASE_MS = 1_700_000_000_000  # a whole second
NS = 1_000_000_000


def settle(broker, name, stream):
    """Waits until the rule has consumed its input and its output stopped
    growing; returns the derived stream's rows."""
    last = [None]

    def stable():
        m = rule(broker, name)["metrics"]
        n = len(derived(broker, stream))
        key = (m["records_in"], m["records_out"], n)
        done = key == last[0] and m["records_in"] > 0
        last[0] = key
        return done
    wait_for(stable, timeout=60, what="%s to settle" % stream, interval=0.5)
    return derived(broker, stream)


# ---------------------------------------------------------------------------
# UCI: per-room hopping averages from MQTT
# ---------------------------------------------------------------------------

def uci_rows(n):
    with lzma.open(UCI, "rt", newline="") as f:
        rd = csv.DictReader(f)
        rows = []
        for r in rd:
            rows.append(r)
            if len(rows) == n:
                break
    t0 = datetime.strptime(rows[0]["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    out = []
    for r in rows:
        t = datetime.strptime(r["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        ts = BASE_MS + int((t - t0).total_seconds() * 1000 / 1200)  # 600 s -> 500 ms
        for k in range(1, 10):
            out.append({"room": "room%d" % k, "ts": ts,
                        "temperature": float(r["T%d" % k].strip()),
                        "humidity": float(r["RH_%d" % k].strip())})
    return out


def publish_all(broker, msgs):
    """Publishes every reading at QoS 1 and waits for every PUBACK."""
    c = paho.Client(client_id="uci-replay", protocol=paho.MQTTv311)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    acked = set()
    lock = threading.Lock()

    def on_publish(client, userdata, mid):
        with lock:
            acked.add(mid)
    c.on_publish = on_publish
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        mids = []
        for m in msgs:
            info = c.publish("house/%s/climate" % m["room"], json.dumps(m), qos=1)
            mids.append(info.mid)
        wait_for(lambda: len(acked) >= len(mids), timeout=120, what="all PUBACKs")
    finally:
        c.loop_stop()
        c.disconnect()


def hopping(readings, size_ms, advance_ms, fields, key):
    """Independent computation: every window [s, s + size) with s a multiple
    of advance that holds readings, per key: averages and counts."""
    acc = {}
    for r in readings:
        first = (r["ts"] - size_ms) // advance_ms * advance_ms + advance_ms
        s = first
        while s <= r["ts"]:
            if s <= r["ts"] < s + size_ms:
                a = acc.setdefault((r[key], s), {"n": 0, **{f: 0.0 for f in fields}})
                a["n"] += 1
                for f in fields:
                    a[f] += r[f]
            s += advance_ms
    return {k: {"n": a["n"], **{f: a[f] / a["n"] for f in fields}} for k, a in acc.items()}


def test_uci_hopping_room_averages_over_mqtt(broker):
    define(broker, name="climate", source="mqtt:house/+/climate", format="json", key="room",
           timestamp="ts", time_format="ms")
    create_rule(broker, """
        CREATE RULE room_avg AS
        SELECT room, avg(temperature) AS t, avg(humidity) AS h, count(*) AS n
          FROM climate
         GROUP BY room, HOPPING(SIZE 5s, ADVANCE 1s)
          EMIT TO 'stream:room_avg'""")
    msgs = uci_rows(400)  # 3600 readings, 200 s of compressed event time
    publish_all(broker, msgs)
    got = settle(broker, "room_avg", "room_avg")
    want = hopping(msgs, 5000, 1000, ("temperature", "humidity"), "room")
    max_ts = max(m["ts"] for m in msgs)
    closed = {k for k in want if k[1] + 5000 <= max_ts - 1000}
    seen = {}
    for r in got:
        k = (r["room"], r["window_start"] // 1_000_000)
        assert k not in seen, "window emitted twice: %r" % (k,)
        seen[k] = r
        assert r["window_end"] - r["window_start"] == 5 * NS
        w = want[k]
        assert r["n"] == w["n"], (k, r, w)
        assert r["t"] == pytest.approx(w["temperature"], rel=1e-9)
        assert r["h"] == pytest.approx(w["humidity"], rel=1e-9)
    missing = closed - set(seen)
    assert not missing, sorted(missing)[:5]
    assert len(seen) >= 9 * 190
    m = rule(broker, "room_avg")["metrics"]
    assert m["records_in"] == len(msgs) and m["errors"] == 0 and m["late"] == 0


# ---------------------------------------------------------------------------
# DEBS 2012: per-second average and relative variation of mf01..mf03
# ---------------------------------------------------------------------------

def debs_rows():
    out = []
    with lzma.open(DEBS, "rt", newline="") as f:
        for line in f:
            p = line.rstrip("\r\n").split("\t")
            ts = datetime.strptime(p[0][:26] + "+0000", "%Y-%m-%dT%H:%M:%S.%f%z")
            ns = int(ts.timestamp()) * NS + int(p[0][20:27]) * 100
            out.append({"machine": "m1", "ts": ns, "mf01": int(p[2]), "mf02": int(p[3]),
                        "mf03": int(p[4])})
    return out


def test_debs_per_second_variation(broker):
    define(broker, name="debs", format="json", key="machine", timestamp="ts",
           time_format="ns")
    cols = ", ".join("avg(%s) AS %s_avg, (max(%s) - min(%s)) / avg(%s) AS %s_var"
                     % (f, f, f, f, f, f) for f in ("mf01", "mf02", "mf03"))
    create_rule(broker, "CREATE RULE debs_q2 AS SELECT machine, %s, count(*) AS n "
                        "FROM debs GROUP BY machine, TUMBLING(1s) EMIT TO 'stream:debs_q2'"
                % cols)
    rows = debs_rows()
    for i in range(0, len(rows), 1000):
        post_ndjson(broker, "debs", rows[i:i + 1000])
    got = settle(broker, "debs_q2", "debs_q2")
    # independent computation
    sec = {}
    for r in rows:
        sec.setdefault(r["ts"] // NS, []).append(r)
    last = max(sec)
    want = {}
    for s, rs in sec.items():
        if s == last:
            continue  # the last second is still open
        w = {"n": len(rs)}
        for f in ("mf01", "mf02", "mf03"):
            v = [r[f] for r in rs]
            avg = sum(v) / len(v)
            w[f + "_avg"] = avg
            w[f + "_var"] = (max(v) - min(v)) / avg
        want[s] = w
    assert len(got) == len(want), (len(got), len(want))
    for r in got:
        s = r["window_start"] // NS
        w = want[s]
        assert r["n"] == w["n"]
        for f in ("mf01", "mf02", "mf03"):
            assert r[f + "_avg"] == pytest.approx(w[f + "_avg"], rel=1e-12)
            assert r[f + "_var"] == pytest.approx(w[f + "_var"], rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------
# Sensor / valve delay detection with a JOIN
# ---------------------------------------------------------------------------

def test_valve_delay_detection(broker):
    define(broker, name="commands", format="json", key="valve", timestamp="ts",
           time_format="ms")
    define(broker, name="positions", format="json", key="valve", timestamp="ts",
           time_format="ms")
    create_rule(broker, """
        CREATE RULE slow_valves AS
        SELECT c.valve AS valve, c.seq AS seq, p.t_ms - c.t_ms AS delay_ms
          FROM commands AS c JOIN positions AS p
            ON c.valve = p.valve AND c.seq = p.seq WITHIN 10s
         WHERE p.t_ms - c.t_ms > 1500
          EMIT TO 'stream:slow_valves'""")
    # 40 commands over 4 valves; known delays in ms, some over 1.5 s
    delays = [200, 1800, 900, 2500, 100, 1600, 1400, 3000] * 5
    cmds, poss = [], []
    for i, d in enumerate(delays):
        t = BASE_MS + i * 4000
        # t_ms repeats the event time as a plain number for the arithmetic
        cmds.append({"valve": "v%d" % (i % 4), "seq": i, "ts": t, "t_ms": t, "cmd": "open"})
        poss.append({"valve": "v%d" % (i % 4), "seq": i, "ts": t + d, "t_ms": t + d,
                     "pos": 100})
    # interleave in event-time order, as the devices would send them
    events = sorted([("commands", c) for c in cmds] + [("positions", p) for p in poss],
                    key=lambda e: e[1]["ts"])
    for stream, e in events:
        post_ndjson(broker, stream, [e])
    want = sorted((("v%d" % (i % 4)), i, d) for i, d in enumerate(delays) if d > 1500)
    rows = wait_for(lambda: (lambda rs: rs if len(rs) >= len(want) else None)(
        derived(broker, "slow_valves")), timeout=30, what="delay alerts")
    got = sorted((r["valve"], r["seq"], r["delay_ms"]) for r in rows)
    assert got == want
