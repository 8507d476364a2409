"""The dashboard's endpoints without a browser: the embedded static files
(content types, ETag revalidation, no path escapes, API routes unharmed),
GET /api/v1/clients and GET /api/v1/overview. tests/browser/ drives the
pages themselves."""

import json
import http.client

import pytest

from conftest import TARGET, wait_for
from test_streams import api, define

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: dashboard")


def get(broker, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", broker.http_port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


def test_static_files(broker):
    st, h, body = get(broker, "/")
    assert st == 200 and h["content-type"].startswith("text/html")
    assert b"/assets/app.js" in body
    assert "script-src 'self'" in h["content-security-policy"]
    etag = h["etag"]
    assert etag.startswith('"') and h["cache-control"] == "no-cache"
    st, h2, body = get(broker, "/", {"If-None-Match": etag})
    assert st == 304 and body == b""
    st, h, body = get(broker, "/assets/app.js")
    assert st == 200 and h["content-type"].startswith("text/javascript")
    st, h, _ = get(broker, "/assets/app.css")
    assert st == 200 and h["content-type"].startswith("text/css")
    st, h, _ = get(broker, "/assets/index.html")
    assert st == 200
    # Only embedded base names: nothing else, no way out.
    for path in ("/assets/nope.js", "/assets/..%2F..%2Fetc%2Fpasswd", "/assets/", "/index.html",
                 "/assets/a/b.js"):
        assert get(broker, path)[0] == 404, path
    # The API and the other doors still answer.
    assert get(broker, "/healthz")[0] == 200
    assert get(broker, "/metrics")[0] == 200
    assert get(broker, "/api/v1/streams")[0] == 200
    assert api(broker, "POST", "/", "x")[0] == 405


def test_clients_lists_connected_clients(broker, client):
    st, body = api(broker, "GET", "/api/v1/clients")
    assert st == 200 and body["clients"] == [] and body["now_ms"] > 0
    sub = client("dash-sub", v=5)
    sub.subscribe("plant/#", qos=1)
    pub = client("dash-pub", v=4)
    for i in range(3):
        pub.publish("plant/m1", b"%d" % i, qos=1)
    sub.get_n(3)

    def listed():
        st, body = api(broker, "GET", "/api/v1/clients")
        return {c["client_id"]: c for c in body["clients"]}

    cs = wait_for(lambda: len(listed()) == 2 and listed(), what="two clients")
    s, p = cs["dash-sub"], cs["dash-pub"]
    assert s["subscriptions"] == [{"filter": "plant/#", "qos": 1}]
    assert s["protocol"] == "5.0" and p["protocol"] == "3.1.1"
    assert s["messages_out"] == 3 and p["messages_in"] == 3
    assert s["peer"].startswith("127.0.0.1:") and s["loopback"] is True
    assert s["connected_since"].endswith("Z") and s["connected_ms"] <= body_now(broker)
    pub.disconnect()
    wait_for(lambda: list(listed()) == ["dash-sub"], what="dash-pub gone")


def body_now(broker):
    return api(broker, "GET", "/api/v1/clients")[1]["now_ms"]


def test_overview(broker, client):
    define(broker, name="ov", source="mqtt:ov/+", format="json", sync="none")
    c = client("ov-pub", v=5)
    for i in range(5):
        c.publish("ov/a", json.dumps({"v": i}).encode(), qos=1)
    st, o = api(broker, "GET", "/api/v1/overview")
    assert st == 200 and o["status"] == "ok" and o["uptime_seconds"] >= 0
    assert o["mqtt"]["clients"] >= 1 and o["mqtt"]["messages_in"] >= 5
    assert o["streams"]["count"] >= 1 and o["streams"]["accepted"] >= 5
    assert o["streams"]["records"] >= 5 and o["streams"]["bytes"] > 0
    assert o["process"]["rss_bytes"] > 0 and o["version"]


def test_web_root_serves_from_disk_first(make_broker, tmp_path):
    (tmp_path / "app.js").write_text("// edited\n")
    (tmp_path / ".hidden").write_text("no")
    b = make_broker({"http.web_root": str(tmp_path)})
    st, h, body = get(b, "/assets/app.js")
    assert st == 200 and body == b"// edited\n" and h["cache-control"] == "no-store"
    assert h["content-type"].startswith("text/javascript")
    # Not in the directory: the embedded file (uPlot, index.html here).
    st, h, body = get(b, "/")
    assert st == 200 and b"/assets/app.js" in body and "etag" in h
    assert get(b, "/assets/.hidden")[0] == 404
