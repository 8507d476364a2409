#!/usr/bin/env python3
"""bench/rules/runtime.py -- the full rule runtime reading a stored stream.

usage: runtime.py HTTP_PORT RULES READINGS [DEVICES]

Against a running, empty weir node: creates the stream `readings` (JSON,
one partition, sync none), creates RULES copies of the benchmark rule
(per-device 5 s hopping-by-1 s average, EMIT TO an MQTT topic nobody
subscribes to, so the output costs a template expansion, a JSON payload and
a broker lookup per row), lets them checkpoint at the (empty) end of the
stream and stops them; then stores READINGS readings (1 ms of event time
apart, DEVICES devices in turn) through the HTTP batch API, and starts every
rule at once: they replay the stored stream from their checkpoint through
the runtime's shared reader (read and decode once, push to every rule).
The time from the start until every rule has records_in == READINGS (polled
every 20 ms through GET /api/v1/rules) gives readings/s. Prints one JSON
line with the rules' state_bytes (run.sh adds the node's RSS from /proc).

Standard library only.
"""
import json
import sys
import time
import urllib.request

SQL = ("CREATE RULE {name} AS SELECT device, avg(temperature) AS t_avg FROM readings "
       "GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s) EMIT TO 'mqtt:bench/{name}/{{device}}'")


def call(port, method, path, body=None, ctype="application/json"):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main():
    port, n_rules, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    devices = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    st, body = call(port, "POST", "/api/v1/streams", json.dumps({
        "name": "readings", "format": "json", "key": "device", "timestamp": "ts",
        "time_format": "ms", "partitions": 1, "sync": "none"}))
    assert st in (200, 201), body
    names = ["r%03d" % i for i in range(n_rules)]
    for name in names:
        st, body = call(port, "POST", "/api/v1/rules",
                        json.dumps({"sql": SQL.format(name=name), "start": True}))
        assert st == 201, body
    for name in names:
        st, body = call(port, "POST", "/api/v1/rules/%s/stop" % name, "")
        assert st == 200 and body["status"] == "stopped", body
    base = 1_700_000_000_000
    t_load = time.monotonic()
    chunk = 20000
    for lo in range(0, n, chunk):
        lines = "\n".join('{"device":"d%03d","ts":%d,"temperature":%.1f}'
                          % (i % devices, base + i, 20 + (i % 200) / 10)
                          for i in range(lo, min(n, lo + chunk)))
        st, body = call(port, "POST", "/api/v1/streams/readings/records", lines,
                        "application/x-ndjson")
        assert st == 200, body
    load_s = time.monotonic() - t_load
    t0 = time.monotonic()
    for name in names:
        st, body = call(port, "POST", "/api/v1/rules/%s/start" % name, "")
        assert st == 200, body
    deadline = t0 + 600
    while True:
        st, body = call(port, "GET", "/api/v1/rules")
        rules = body["rules"]
        if all(r["metrics"]["records_in"] >= n for r in rules):
            break
        bad = [r for r in rules if r["status"] != "running"]
        if bad or time.monotonic() > deadline:
            print(json.dumps({"error": "rules did not finish", "rules": bad or rules[:1]}))
            sys.exit(1)
        time.sleep(0.02)
    secs = time.monotonic() - t0
    m = rules[0]["metrics"]
    print(json.dumps({
        "rules": n_rules, "readings": n, "devices": devices, "seconds": round(secs, 4),
        "readings_per_s": round(n / secs), "pushes_per_s": round(n * n_rules / secs),
        "rows_out_per_rule": m["records_out"], "errors": sum(r["metrics"]["errors"] for r in rules),
        "state_bytes_per_rule": m["state_bytes"], "load_seconds": round(load_s, 2)}))


if __name__ == "__main__":
    main()
