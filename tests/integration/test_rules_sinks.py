"""Rule outputs that leave the node (src/sink/): an mqtt: topic template
published on the node's own broker to a real MQTT subscriber, and a
webhook: POSTing to a real HTTP server run by the test. Checks topics
(values escaped to one level), payloads (_rule, _seq in order, _ts), the
sink counters in GET /api/v1/rules/{name} and /metrics, and that a target
that is not a valid topic template fails the rule with the reason."""

import http.server
import json
import threading

import pytest

from conftest import TARGET, Client, wait_for
from rules_util import api, define, post_ndjson, rule

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: rules")

BASE = 1_700_000_000_000


def readings(broker):
    define(broker, name="readings", format="json", key="device", timestamp="ts",
           time_format="ms")


def create(broker, sql, options=None, expect=(201,)):
    body = {"sql": sql, "start": True}
    if options is not None:
        body["options"] = options
    st, out = api(broker, "POST", "/api/v1/rules", json.dumps(body))
    assert st in expect, out
    return out


def test_mqtt_template_and_payload(broker):
    readings(broker)
    sub = Client(broker, "sub")
    sub.connect()
    sub.subscribe("alerts/#", qos=1)
    create(broker, "CREATE RULE hot AS SELECT device, t FROM readings "
                   "EMIT TO 'mqtt:alerts/{device}/t'", {"qos": 1})
    rows = [{"device": d, "ts": BASE + i, "t": i}
            for i, d in enumerate(["p1", "p2", "line/3", "p1"])]
    post_ndjson(broker, "readings", rows)
    msgs = sub.get_n(4)
    assert [m.topic for m in msgs] == ["alerts/p1/t", "alerts/p2/t", "alerts/line%2F3/t",
                                       "alerts/p1/t"]
    assert all(m.qos == 1 for m in msgs)
    bodies = [json.loads(m.payload) for m in msgs]
    assert [b["_seq"] for b in bodies] == [1, 2, 3, 4]
    assert [b["t"] for b in bodies] == [0, 1, 2, 3]
    assert all(b["_rule"] == "hot" for b in bodies)
    assert [b["_ts"] for b in bodies] == [BASE + i for i in range(4)]
    sink = wait_for(lambda: (lambda r: r["sink"] if r["sink"]["sent"] == 4 else None)(
        rule(broker, "hot")), what="sink sent 4")
    assert sink["type"] == "mqtt" and sink["failed"] == 0
    st, text = api(broker, "GET", "/metrics")
    assert 'weir_sink_rows_total{rule="hot",result="sent"} 4' in text.decode()
    sub.close()


def test_mqtt_bad_template_fails_rule(broker):
    readings(broker)
    out = create(broker, "CREATE RULE bad AS SELECT device FROM readings "
                         "EMIT TO 'mqtt:alerts/#'", expect=(201, 409))
    r = wait_for(lambda: (lambda r: r if r["status"] == "failed" else None)(rule(broker, "bad")),
                 what="rule failed")
    assert "#" in (r["error"] or ""), (out, r)


class _Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n))
        srv = self.server
        with srv.lock:
            srv.calls += 1
            fail = srv.calls in srv.fail_calls
            if not fail:
                srv.bodies.append((self.headers.get("X-Weir-Seq"), body))
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_delivers_in_order_with_retries(broker):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.lock, srv.calls, srv.bodies, srv.fail_calls = threading.Lock(), 0, [], {2, 3}
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        readings(broker)
        url = "http://127.0.0.1:%d/hook" % srv.server_address[1]
        create(broker, "CREATE RULE wh AS SELECT device, t FROM readings "
                       "EMIT TO 'webhook:%s'" % url,
               {"retry_base_ms": 5, "rate": "200/s", "burst": 1})
        post_ndjson(broker, "readings", [{"device": "d", "ts": BASE + i, "t": i}
                                         for i in range(10)])
        wait_for(lambda: len(srv.bodies) >= 10, what="10 webhook calls")
        with srv.lock:
            bodies = list(srv.bodies)
        assert [int(h) for h, _ in bodies] == list(range(1, 11))
        assert [b["_seq"] for _, b in bodies] == list(range(1, 11))
        assert [b["t"] for _, b in bodies] == list(range(10))
        sink = wait_for(lambda: (lambda r: r["sink"] if r["sink"]["sent"] == 10 else None)(
            rule(broker, "wh")), what="sink sent 10")
        assert sink["type"] == "webhook"
        assert sink["retries"] == 2 and sink["failed"] == 0
        assert sink["drl_ms"]["count"] == 10 and sink["drl_ms"]["max"] > 0
    finally:
        srv.shutdown()
        srv.server_close()
