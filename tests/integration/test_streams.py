"""Durable streams through the real binary: MQTT and HTTP ingest, dead
letters, archived-file import (the UCI Appliances Energy file), history
pages and series checked against an independent computation, `weir tail`,
restarts, and retention.

Streams are defined through the HTTP API, which keeps them in the catalog,
so they survive restarts like a production node's."""

import csv
import datetime
import json
import os
import statistics
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import WAIT, TARGET, wait_for

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: streams")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(os.path.dirname(HERE))
SHIPPED_UCI = os.path.join(SRC, "demo", "data", "uci_appliances_energydata_complete.csv.xz")


@pytest.fixture(scope="module")
def uci_csv(tmp_path_factory):
    """The UCI Appliances Energy file: ../shared/data when there, else the
    compressed copy weir ships (decompressed once per module)."""
    shared = os.path.join(SRC, "..", "shared", "data", "uci_appliances_energydata_complete.csv")
    if os.path.exists(shared):
        return shared
    import lzma
    out = tmp_path_factory.mktemp("uci") / "uci_appliances_energydata_complete.csv"
    with lzma.open(SHIPPED_UCI) as src, open(out, "wb") as dst:
        dst.write(src.read())
    return str(out)


def weir_bin():
    return os.environ.get("WEIR_BIN") or os.path.join(SRC, "build-test", "weir")


def api(broker, method, path, body=None, ctype="application/json", timeout=30):
    """(status, parsed JSON or raw bytes) of an HTTP call to the broker."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (broker.http_port, path),
                                 data=data, method=method)
    if data is not None and ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def define(broker, **definition):
    status, body = api(broker, "POST", "/api/v1/streams", json.dumps(definition))
    assert status in (200, 201), body
    return body


def all_records(broker, stream, **params):
    """Every record of the stream, by paging with the cursor."""
    out, cursor = [], ""
    name = urllib.parse.quote(stream, safe="")
    while True:
        q = dict(params, limit=1000)
        if cursor:
            q["cursor"] = cursor
        status, page = api(broker, "GET", "/api/v1/streams/%s/records?%s"
                           % (name, urllib.parse.urlencode(q)))
        assert status == 200, page
        out += page["records"]
        if not page["more"]:
            return out
        cursor = page["next_cursor"]


def test_mqtt_ingest_keys_partitions_and_history(broker, client):
    define(broker, name="printers", source="mqtt:factory/+/printer/+/telemetry",
           format="json", key="topic:4", timestamp="ts", time_format="ms", partitions=3,
           sync="interval=5ms")
    pub = client("dev", v=5)
    t0 = 1_700_000_000_000
    for i in range(30):
        device = "p%d" % (i % 3)
        pub.publish("factory/f1/printer/%s/telemetry" % device,
                    json.dumps({"ts": t0 + i * 1000, "temperature": 20.0 + i, "ok": True}), qos=1)
    recs = all_records(broker, "printers")
    assert len(recs) == 30
    # Time order across partitions, keys from the topic level, typed fields.
    assert [r["ts_ns"] for r in recs] == sorted(r["ts_ns"] for r in recs)
    assert recs[0]["ts_ns"] == t0 * 1_000_000
    assert {r["key"] for r in recs} == {"p0", "p1", "p2"}
    assert recs[5]["fields"]["temperature"] == 25.0 and recs[5]["fields"]["ok"] is True
    # Every record carries T2 (arrival) <= T3 (commit).
    assert all(0 < r["arrival_ns"] <= r["commit_ns"] for r in recs)
    # A key and a field filter.
    p1 = all_records(broker, "printers", key="p1", fields="temperature")
    assert len(p1) == 10 and set(p1[0]["fields"]) == {"temperature"}
    # A time range: [t0+10s, t0+20s).
    part = all_records(broker, "printers", **{"from": str(t0 + 10_000), "to": str(t0 + 20_000)})
    assert [r["fields"]["temperature"] for r in part] == [30.0 + i for i in range(10)]
    # The stream list reports counts and the first and last times.
    status, body = api(broker, "GET", "/api/v1/streams")
    s = next(x for x in body["streams"] if x["name"] == "printers")
    assert s["records"] == 30 and s["first"].startswith("2023-11-14T22:13:20")


def test_series_aggregates(broker, client):
    define(broker, name="air", source="mqtt:air/+", format="json", key="topic:2",
           timestamp="t", time_format="s")
    c = client("a", v=5)
    base = 1_700_000_000 - 1_700_000_000 % 60
    values = {}
    for i in range(180):  # three minutes, one reading a second
        v = (i * 7) % 13 + 0.5
        values.setdefault(i // 60, []).append((i, v))
        c.publish("air/r1", json.dumps({"t": base + i, "co2": v}), qos=1 if i % 60 == 59 else 0)
    wait_for(lambda: api(broker, "GET", "/api/v1/streams/air")[1]["records"] == 180,
             what="180 records stored")
    for agg, fn in [("avg", lambda xs: sum(v for _, v in xs) / len(xs)),
                    ("min", lambda xs: min(v for _, v in xs)),
                    ("max", lambda xs: max(v for _, v in xs)),
                    ("sum", lambda xs: sum(v for _, v in xs)),
                    ("count", len),
                    ("first", lambda xs: xs[0][1]),
                    ("last", lambda xs: xs[-1][1])]:
        status, s = api(broker, "GET", "/api/v1/streams/air/series?field=co2&every=1m&agg=" + agg)
        assert status == 200, s
        assert s["t"] == [(base + 60 * m) * 1000 for m in range(3)], agg
        for m in range(3):
            assert s["v"][m] == pytest.approx(fn(values[m])), (agg, m)
    status, s = api(broker, "GET", "/api/v1/streams/air/series?field=co2&every=1ms")
    assert status == 400 and "buckets" in s["error"]
    status, s = api(broker, "GET", "/api/v1/streams/air/series?every=1m")
    assert status == 400


def test_dead_letters_never_stop_ingest(broker, client):
    define(broker, name="valves", source="mqtt:valves/#", format="json", key="id")
    watcher = client("watch", v=5)
    watcher.subscribe("$weir/deadletter/#", qos=0)
    c = client("dev", v=5)
    c.publish("valves/1", b"{not json", qos=1)
    c.publish("valves/1", json.dumps({"id": "v1", "open": 1}), qos=1)
    m = watcher.get()
    assert m.topic == "$weir/deadletter/valves"
    dl = json.loads(m.payload)
    assert dl["stream"] == "valves" and dl["payload"] == "{not json" and dl["error"]
    assert [r["fields"]["open"] for r in all_records(broker, "valves")] == [1]
    kept = wait_for(lambda: all_records(broker, "$deadletter"), what="a dead letter stored")
    assert kept[0]["fields"]["stream"] == "valves"
    status, s = api(broker, "GET", "/api/v1/streams/valves")
    assert s["rejected"] == 1 and s["accepted"] == 1


@pytest.mark.broker(config={"http.max_body": "4k"})
def test_http_ingest_formats_and_errors(broker):
    define(broker, name="m", format="json", key="dev", timestamp="ts", time_format="ms")
    ok = lambda st, b: (st == 200, b)  # noqa: E731
    st, b = api(broker, "POST", "/api/v1/streams/m/records",
                json.dumps([{"dev": "a", "ts": 1000, "x": 1}, {"dev": "b", "ts": 2000, "x": 2}]))
    assert ok(st, b)[0] and b["accepted"] == 2 and b["rejected"] == 0
    st, b = api(broker, "POST", "/api/v1/streams/m/records",
                '{"dev":"a","ts":3000,"x":3}\nnot json\n{"dev":"c","ts":4000,"x":4}\n',
                "application/x-ndjson")
    assert st == 200 and b["accepted"] == 2 and b["rejected"] == 1
    assert b["errors"][0]["line"] == 2
    st, b = api(broker, "POST", "/api/v1/streams/m/records", "dev,ts,x\nd,5000,5\ne,6000,6\n",
                "text/csv")
    assert st == 200 and b["accepted"] == 2, b
    st, b = api(broker, "POST", "/api/v1/streams/m/records?format=line",
                "m,dev=f x=7 7000\nm,dev=g x=8i 8000\n", "text/plain")
    assert st == 200 and b["accepted"] == 2, b
    xs = [r["fields"]["x"] for r in all_records(broker, "m")]
    assert xs == [1, 2, 3, 4, 5, 6, 7, 8]
    # Garbage: 400 with a JSON error and the position.
    st, b = api(broker, "POST", "/api/v1/streams/m/records", "\x01\x02garbage", "application/json")
    assert st == 400 and b["code"] and b["line"] == 1 and "error" in b
    # Oversize: 413 with a JSON error, nothing stored.
    st, b = api(broker, "POST", "/api/v1/streams/m/records", "[" + "1," * 4000 + "1]")
    assert st == 413 and b["code"] == "ETOOBIG"
    st, b = api(broker, "POST", "/api/v1/streams/nope/records", "[]")
    assert st == 404 and b["code"] == "ENOTFOUND"
    st, b = api(broker, "POST", "/api/v1/streams", '{"name": "bad name!"}')
    assert st == 400 and "name" in b["error"]
    assert len(all_records(broker, "m")) == 8


def hourly_reference(path):
    """Per-hour averages of T1 and RH_1 computed with csv and statistics."""
    buckets = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            t = datetime.datetime.strptime(row["date"].strip(), "%Y-%m-%d %H:%M:%S")
            hour = int(t.replace(tzinfo=datetime.timezone.utc).timestamp()) // 3600 * 3600
            b = buckets.setdefault(hour, ([], []))
            b[0].append(float(row["T1"]))
            b[1].append(float(row["RH_1"]))
    hours = sorted(buckets)
    return (hours, [statistics.fmean(buckets[h][0]) for h in hours],
            [statistics.fmean(buckets[h][1]) for h in hours])


def test_uci_import_once_and_hourly_series(broker, uci_csv):
    UCI = uci_csv
    define(broker, name="energy", format="csv", partitions=2, sync="interval=20ms")
    args = [weir_bin(), "import", UCI, "--stream", "energy", "--time-column", "date",
            "--url", "http://127.0.0.1:%d" % broker.http_port, "--chunk", "400000"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["accepted"] == 19735 and first["rejected"] == 0
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["accepted"] == 0 and second["duplicate_chunks"] == second["chunks"]
    st, s = api(broker, "GET", "/api/v1/streams/energy")
    assert s["records"] == 19735
    assert s["first"] == "2016-01-11T17:00:00.000Z" and s["last"] == "2016-05-27T18:00:00.000Z"
    hours, t1, rh1 = hourly_reference(UCI)
    for field, ref in (("T1", t1), ("RH_1", rh1)):
        st, series = api(broker, "GET",
                         "/api/v1/streams/energy/series?field=%s&every=1h&agg=avg" % field)
        assert st == 200, series
        assert series["t"] == [h * 1000 for h in hours]
        assert len(series["v"]) == len(ref) == 3290
        for got, want in zip(series["v"], ref):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_tail_and_follow(broker, client, procs):
    define(broker, name="t", source="mqtt:t/+", format="json", key="topic:2")
    c = client("p", v=5)
    for i in range(3):
        c.publish("t/k", json.dumps({"i": i}), qos=1)
    url = "http://127.0.0.1:%d" % broker.http_port
    out = subprocess.run([weir_bin(), "tail", "t", "--url", url], capture_output=True,
                         text=True, timeout=WAIT * 4)
    assert out.returncode == 0, out.stderr
    assert [json.loads(l)["fields"]["i"] for l in out.stdout.splitlines()] == [0, 1, 2]
    follower = procs([weir_bin(), "tail", "t", "--url", url, "--from", "latest", "--follow"])
    # Publish until the follower prints: its first long poll may start after
    # the first publish, which it then does not show (it follows from now).
    deadline = time.monotonic() + WAIT * 2
    line = None
    while line is None and time.monotonic() < deadline:
        c.publish("t/k", json.dumps({"i": 99}), qos=1)
        try:
            line = follower.next_line(timeout=1.0)
        except BaseException:
            line = None
    assert line and json.loads(line)["fields"]["i"] == 99


def test_streams_survive_restart(broker, client):
    define(broker, name="keep", source="mqtt:keep/#", format="json", sync="always")
    c = client("p", v=5)
    for i in range(20):
        c.publish("keep/x", json.dumps({"n": i}), qos=1)
    c.close()
    broker.restart()
    assert [r["fields"]["n"] for r in all_records(broker, "keep")] == list(range(20))
    # The source still feeds the stream after the restart.
    c2 = client("p2", v=5)
    c2.publish("keep/x", json.dumps({"n": 20}), qos=1)
    assert len(all_records(broker, "keep")) == 21


def test_retention_removes_old_segments(broker):
    define(broker, name="short", format="json", timestamp="ts", time_format="ms",
           retention="1h", segment_bytes="4k", sync="none")
    now_ms = int(time.time() * 1000)
    old = [{"ts": now_ms - 3 * 3600_000 + i, "v": i} for i in range(300)]
    new = [{"ts": now_ms + i, "v": 1000 + i} for i in range(50)]
    st, b = api(broker, "POST", "/api/v1/streams/short/records", json.dumps(old))
    assert st == 200 and b["accepted"] == 300
    st, b = api(broker, "POST", "/api/v1/streams/short/records", json.dumps(new))
    assert st == 200 and b["accepted"] == 50
    # The writer applies retention about once a second, in the background.
    wait_for(lambda: api(broker, "GET", "/api/v1/streams/short")[1]["records"] <= 60,
             timeout=15, what="old segments removed by retention")
    recs = all_records(broker, "short")
    vs = [r["fields"]["v"] for r in recs]
    assert vs[-50:] == [1000 + i for i in range(50)]  # every recent record kept
    assert all(v >= 1000 or r["ts_ns"] < (now_ms - 3600_000) * 1_000_000
               for v, r in zip(vs, recs))
    st, s = api(broker, "GET", "/api/v1/streams/short/series?field=v&every=1h&agg=count")
    assert sum(s["v"]) == len(recs)


def test_consumer_group_offsets_and_inferred_fields(broker):
    define(broker, name="g", format="json", partitions=2, key="dev")
    body = "\n".join(json.dumps({"dev": "d%d" % (i % 4), "v": i, "ok": i % 2 == 0,
                                 "note": "x"}) for i in range(40))
    st, b = api(broker, "POST", "/api/v1/streams/g/records", body, "application/x-ndjson")
    assert st == 200 and b["accepted"] == 40
    # Schemaless fields are inferred and shown with their types.
    st, s = api(broker, "GET", "/api/v1/streams/g")
    assert s["fields_seen"] == {"dev": "string", "v": "int", "ok": "bool", "note": "string"}
    st, g = api(broker, "GET", "/api/v1/streams/g/groups/dash")
    assert st == 200 and all(p["next_offset"] is None for p in g["partitions"])
    ends = {p["partition"]: p["end"] for p in g["partitions"]}
    assert sum(ends.values()) == 40
    # A consumer reads partition 0 from offset 0, commits, and resumes from there.
    st, page = api(broker, "GET", "/api/v1/streams/g/records?partition=0&offset=0&limit=5")
    assert [r["partition"] for r in page["records"]] == [0] * 5
    nxt = page["records"][-1]["offset"] + 1
    st, g = api(broker, "POST", "/api/v1/streams/g/groups/dash",
                json.dumps({"offsets": {"0": nxt}}))
    assert st == 200
    p0 = next(p for p in g["partitions"] if p["partition"] == 0)
    assert p0["next_offset"] == nxt and p0["lag"] == ends[0] - nxt
    broker.restart()
    st, g = api(broker, "GET", "/api/v1/streams/g/groups/dash")
    assert next(p for p in g["partitions"] if p["partition"] == 0)["next_offset"] == nxt
    st, page = api(broker, "GET", "/api/v1/streams/g/records?partition=0&offset=%d&limit=1000"
                   % nxt)
    assert [r["offset"] for r in page["records"]] == list(range(nxt, ends[0]))
    # Offsets past the end or for unknown partitions are refused.
    st, e = api(broker, "POST", "/api/v1/streams/g/groups/dash",
                json.dumps({"offsets": {"0": ends[0] + 1}}))
    assert st == 400
    st, e = api(broker, "POST", "/api/v1/streams/g/groups/dash",
                json.dumps({"offsets": {"7": 0}}))
    assert st == 400


def test_paging_a_larger_stream_is_complete_and_ordered(broker):
    """Pages stop scanning early once nothing later can enter them (segment
    min-ts bounds); paging must still return every record exactly once, in
    (ts, partition, offset) order, also with out-of-order timestamps."""
    define(broker, name="big", format="json", key="k", timestamp="ts", time_format="ms",
           partitions=2, segment_bytes="16k", sync="none")
    rows = []
    for i in range(6000):
        ts = 1_000_000 + i * 10 - (30000 if i % 97 == 0 else 0)  # late by ~3000 records
        rows.append({"k": "a" if i % 3 else "b", "ts": ts, "i": i})
    for start in range(0, len(rows), 2000):
        st, b = api(broker, "POST", "/api/v1/streams/big/records",
                    "\n".join(json.dumps(r) for r in rows[start:start + 2000]),
                    "application/x-ndjson")
        assert st == 200 and b["accepted"] == 2000
    out, cursor, pages = [], "", 0
    while True:
        q = {"limit": 250}
        if cursor:
            q["cursor"] = cursor
        st, page = api(broker, "GET", "/api/v1/streams/big/records?" + urllib.parse.urlencode(q))
        assert st == 200
        out += page["records"]
        pages += 1
        if not page["more"]:
            break
        cursor = page["next_cursor"]
    keys = [(r["ts_ns"], r["partition"], r["offset"]) for r in out]
    assert keys == sorted(keys)
    assert sorted(r["fields"]["i"] for r in out) == list(range(6000))
    assert pages >= 24
