"""Authentication and authorisation through the real binary, with real
clients: every role against every door (MQTT over TCP with paho and
mosquitto_pub/sub, MQTT 3.1.1 raw, HTTP with requests and curl) and action,
allowed and denied; API tokens (revocation and expiry take effect at once);
sessions with CSRF; back-off after failed logins; the audit trail; and that
no password or token is ever stored or logged in clear.

Anonymous access is off here (auth.anonymous=false), as in production; the
rest of the suite runs the loopback demo/test profile."""

import json
import os
import subprocess
import uuid

import paho.mqtt.client as paho
import pytest
import requests
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqttraw
from conftest import ADMIN_PASSWORD, TARGET, WAIT, let_time_pass, wait_for

pytestmark = [
    pytest.mark.skipif(TARGET != "weir", reason="weir-specific: users, roles, tokens"),
    pytest.mark.broker(config={"auth.anonymous": "false"}),
]

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(os.path.dirname(HERE))

ROLES = ["admin", "manager", "operator", "viewer", "supplier", "device"]
PASSWORDS = {r: "pw-%s-%s" % (r, uuid.uuid4().hex[:12]) for r in ROLES}
PASSWORDS["admin"] = ADMIN_PASSWORD
USER = {r: ("adm" if r == "admin" else r + "1") for r in ROLES}
USER["admin"] = "admin"


def weir_bin():
    return os.environ.get("WEIR_BIN") or os.path.join(SRC, "build-test", "weir")


class Http:
    """A client of the HTTP API with a Bearer token, a session, or nothing."""

    def __init__(self, broker, token=None):
        self.base = "http://127.0.0.1:%d" % broker.http_port
        self.s = requests.Session()
        self.csrf = None
        if token:
            self.s.headers["Authorization"] = "Bearer " + token

    def call(self, method, path, body=None, csrf=True, **kw):
        headers = {}
        if self.csrf and csrf:
            headers["X-CSRF-Token"] = self.csrf
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        r = self.s.request(method, self.base + path, data=body, headers=headers, timeout=30,
                           **kw)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def login(self, user, password):
        st, b = self.call("POST", "/api/v1/login", {"username": user, "password": password},
                          csrf=False)
        if st == 200:
            self.csrf = b["csrf_token"]
        return st, b


def admin_http(broker):
    h = Http(broker)
    st, b = h.login("admin", ADMIN_PASSWORD)
    assert st == 200, b
    return h


@pytest.fixture
def world(broker):
    """Users of every role with tokens, two streams and some grants."""
    adm = admin_http(broker)
    for r in ROLES[1:]:
        st, b = adm.call("POST", "/api/v1/users",
                         {"name": USER[r], "role": r, "password": PASSWORDS[r]})
        assert st == 201, b
    tokens = {}
    for r in ROLES:
        st, b = adm.call("POST", "/api/v1/users/%s/tokens" % USER[r], {"description": "test"})
        assert st == 201, b
        tokens[r] = b["token"]
    for name in ("plant1", "plant2"):
        st, b = adm.call("POST", "/api/v1/streams",
                         {"name": name, "source": "mqtt:%s/#" % name, "format": "json"})
        assert st == 201, b
    grants = [
        {"subject_kind": "role", "subject": "viewer", "resource_kind": "stream",
         "pattern": "plant1", "access": "read"},
        {"subject_kind": "role", "subject": "viewer", "resource_kind": "topic",
         "pattern": "plant1/#", "access": "read"},
        {"subject_kind": "user", "subject": USER["supplier"], "resource_kind": "stream",
         "pattern": "plant2", "access": "read"},
        {"subject_kind": "user", "subject": USER["device"], "resource_kind": "stream",
         "pattern": "plant1", "access": "write"},
    ]
    for g in grants:
        st, b = adm.call("POST", "/api/v1/grants", g)
        assert st == 201, b
    return {"adm": adm, "tokens": tokens}


# ---------------------------------------------------------------------------
# HTTP: each role against each action
# ---------------------------------------------------------------------------

# action -> (method, path, body, roles allowed)
HTTP_ACTIONS = {
    "metrics": ("GET", "/metrics", None, {"admin", "manager", "operator", "viewer", "supplier"}),
    "read plant1": ("GET", "/api/v1/streams/plant1/records", None,
                    {"admin", "manager", "operator", "viewer"}),
    "read plant2": ("GET", "/api/v1/streams/plant2/records", None,
                    {"admin", "manager", "operator", "supplier"}),
    "series plant1": ("GET", "/api/v1/streams/plant1/series?field=v&every=1h", None,
                      {"admin", "manager", "operator", "viewer"}),
    "write plant1": ("POST", "/api/v1/streams/plant1/records", '[{"v": 1}]',
                     {"admin", "manager", "device"}),
    "write plant2": ("POST", "/api/v1/streams/plant2/records", '[{"v": 1}]',
                     {"admin", "manager"}),
    "query plant1": ("POST", "/api/v1/query", "SELECT count(*) FROM plant1",
                     {"admin", "manager", "operator", "viewer"}),
    "query plant2": ("POST", "/api/v1/query", "SELECT count(*) FROM plant2",
                     {"admin", "manager", "operator", "supplier"}),
    "create stream": ("POST", "/api/v1/streams", '{"name": "tmp%s", "format": "json"}',
                      {"admin", "manager"}),
    "list users": ("GET", "/api/v1/users", None, {"admin"}),
    "add user": ("POST", "/api/v1/users", '{"name": "new%s", "role": "viewer"}', {"admin"}),
    "grants": ("GET", "/api/v1/grants", None, {"admin"}),
    "read audit": ("GET", "/api/v1/streams/$audit/records", None, {"admin"}),
    "me": ("GET", "/api/v1/me", None, set(ROLES)),
    # Rules, through REST and through SQL statements of /api/v1/query: the
    # SQL door must ask what the REST route asks.
    "create rule": ("POST", "/api/v1/rules",
                    "CREATE RULE rest_%s AS SELECT v FROM plant1 EMIT TO 'stream:rest_%s_out'",
                    {"admin", "manager"}),
    "create rule by SQL": ("POST", "/api/v1/query",
                           "CREATE RULE sql_%s AS SELECT v FROM plant1 EMIT TO 'stream:sql_%s_out'",
                           {"admin", "manager"}),
    "list rules": ("GET", "/api/v1/rules", None, {"admin", "manager", "operator"}),
    "show rules by SQL": ("POST", "/api/v1/query", "SHOW RULES", {"admin", "manager", "operator"}),
    "create stream by SQL": ("POST", "/api/v1/query", "CREATE STREAM sqls_%s (v DOUBLE)",
                             {"admin", "manager"}),
}


def test_http_role_matrix(broker, world):
    failures = []
    for role in ROLES:
        h = Http(broker, world["tokens"][role])
        for action, (method, path, body, allowed) in HTTP_ACTIONS.items():
            if body and "%s" in body:
                body = body.replace("%s", role)
            st, b = h.call(method, path, body)
            want_ok = role in allowed
            ok = 200 <= st < 300
            if ok != want_ok or (not ok and st != 403):
                failures.append("%s %s: %s %s" % (role, action, st, b))
            if not ok:
                assert isinstance(b, dict) and b.get("code") == "EDENIED", (role, action, b)
    assert not failures, "\n".join(failures)


def test_stream_list_shows_only_readable(broker, world):
    names = lambda role: sorted(s["name"] for s in Http(broker, world["tokens"][role])
                                .call("GET", "/api/v1/streams")[1]["streams"]
                                if not s["name"].startswith("$"))
    assert names("viewer") == ["plant1"]
    assert names("supplier") == ["plant2"]
    assert names("operator") == ["plant1", "plant2"]
    assert names("device") == []


def test_unauthenticated_http_is_401_json(broker):
    h = Http(broker)
    for method, path in [("GET", "/api/v1/streams"), ("GET", "/metrics"),
                         ("POST", "/api/v1/query"), ("GET", "/api/v1/users")]:
        st, b = h.call(method, path)
        assert st == 401 and b["code"] == "EAUTH", (path, st, b)
    assert h.call("GET", "/healthz")[0] == 200
    bad = Http(broker, "wt_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    st, b = bad.call("GET", "/api/v1/streams")
    assert st == 401 and b["code"] == "EAUTH"
    # curl, as an operator's script would.
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://127.0.0.1:%d/api/v1/streams" % broker.http_port],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "401"


# ---------------------------------------------------------------------------
# Sessions and CSRF
# ---------------------------------------------------------------------------


def test_login_session_cookie_and_csrf(broker, world):
    h = Http(broker)
    st, b = h.login(USER["manager"], "wrong-password")
    assert st == 401 and b["code"] == "EAUTH"
    r = h.s.post(h.base + "/api/v1/login", timeout=30,
                 json={"username": USER["manager"], "password": PASSWORDS["manager"]})
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure on TLS
    h.csrf = r.json()["csrf_token"]
    assert r.json()["role"] == "manager"
    # Reads need no CSRF token; changes do.
    assert h.call("GET", "/api/v1/streams")[0] == 200
    st, b = h.call("POST", "/api/v1/streams", {"name": "c1", "format": "json"}, csrf=False)
    assert st == 403 and "CSRF" in b["error"]
    h.s.headers["X-CSRF-Token"] = "x" * 43
    st, b = h.call("POST", "/api/v1/streams", {"name": "c1", "format": "json"}, csrf=False)
    del h.s.headers["X-CSRF-Token"]
    assert st == 403
    st, b = h.call("POST", "/api/v1/streams", {"name": "c1", "format": "json"})
    assert st == 201, b
    st, me = h.call("GET", "/api/v1/me")
    assert me["user"] == USER["manager"] and me["csrf_token"] == h.csrf
    # Bearer requests are exempt from CSRF (no ambient credential).
    t = Http(broker, world["tokens"]["manager"])
    assert t.call("DELETE", "/api/v1/streams/c1")[0] == 204
    st, b = h.call("POST", "/api/v1/logout")
    assert st == 200
    assert h.call("GET", "/api/v1/streams")[0] == 401


# ---------------------------------------------------------------------------
# MQTT: each role against publish and subscribe, both protocol versions
# ---------------------------------------------------------------------------


def paho_client(broker, user, password, v5=True, client_id=None):
    """A connected paho client, or the CONNACK reason when refused."""
    cid = client_id or "c-%s" % uuid.uuid4().hex[:8]
    c = paho.Client(client_id=cid, protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
    res = {}

    def on_connect(cl, ud, flags, rc, props=None):
        res["rc"] = rc.value if hasattr(rc, "value") else rc

    c.on_connect = on_connect
    if user is not None:
        c.username_pw_set(user, password)
    c.connect("127.0.0.1", broker.port, keepalive=30)
    c.loop_start()
    wait_for(lambda: "rc" in res, what="CONNACK")
    if res["rc"] != 0:
        c.loop_stop()
        c.disconnect()
        return res["rc"]
    return c


def raw_connect(broker, v, **kw):
    c = mqttraw.Conn(broker.port, v=v, timeout=WAIT)
    c.send(mqttraw.connect("raw-%s" % uuid.uuid4().hex[:6], v=v, **kw))
    return c, c.read(WAIT)


def test_mqtt_connect_credentials(broker, world):
    # MQTT 5: no credentials -> 0x87, bad password -> 0x86, token -> ok.
    assert paho_client(broker, None, None) == 0x87
    assert paho_client(broker, USER["viewer"], "nope-nope") == 0x86
    assert paho_client(broker, "nobody", "nope-nope") == 0x86
    c = paho_client(broker, "", world["tokens"]["viewer"])
    assert not isinstance(c, int)
    c.disconnect()
    c = paho_client(broker, USER["viewer"], world["tokens"]["viewer"])
    assert not isinstance(c, int)
    c.disconnect()
    # A token of another user under this name is refused.
    assert paho_client(broker, USER["viewer"], world["tokens"]["device"]) == 0x86
    # 3.1.1: 5 (not authorised) and 4 (bad user name or password).
    conn, p = raw_connect(broker, mqttraw.V311)
    assert p.raw == mqttraw.connack(rc=5)
    conn.close()
    conn, p = raw_connect(broker, mqttraw.V311, username=USER["viewer"], password=b"nope-nope")
    assert p.raw == mqttraw.connack(rc=4)
    conn.close()
    conn, p = raw_connect(broker, mqttraw.V311, username=USER["viewer"],
                          password=PASSWORDS["viewer"].encode())
    assert p.raw == mqttraw.connack(rc=0)
    conn.close()


# role -> (topic published, allowed?) and (filter subscribed, allowed?)
MQTT_PUB = {
    "admin": [("plant2/a", True), ("devices/x/y", True)],
    "manager": [("plant2/a", True)],
    "operator": [("plant1/a", False)],
    "viewer": [("plant1/a", False)],
    "supplier": [("plant2/a", False)],
    "device": [("devices/%s/t" % USER["device"], True), ("devices/other/t", False),
               ("plant1/a", False)],
}
MQTT_SUB = {
    "admin": [("#", True)],
    "manager": [("plant2/#", True)],
    "operator": [("plant2/#", True), ("#", True)],
    "viewer": [("plant1/#", True), ("plant1/x/+", True), ("plant2/#", False), ("#", False)],
    "supplier": [("plant2/#", False)],
    "device": [("devices/%s/cmd/#" % USER["device"], True), ("devices/other/cmd/#", False),
               ("devices/%s/#" % USER["device"], False)],
}


def test_mqtt5_role_matrix(broker, world):
    failures = []
    for role in ROLES:
        c = paho_client(broker, USER[role], PASSWORDS[role])
        assert not isinstance(c, int), (role, c)
        acks = {}
        c.on_subscribe = lambda cl, ud, mid, rcs, props=None: acks.__setitem__(
            mid, [r.value for r in rcs])
        c.on_publish = lambda cl, ud, mid: acks.__setitem__(("pub", mid), True)
        for filt, ok in MQTT_SUB[role]:
            _, mid = c.subscribe(filt, qos=1)
            codes = wait_for(lambda: acks.get(mid), what="SUBACK")
            if (codes[0] < 0x80) != ok or (not ok and codes[0] != 0x87):
                failures.append("%s subscribe %s: %r" % (role, filt, codes))
        for topic, ok in MQTT_PUB[role]:
            # paho 1.6 hides PUBACK reason codes: read them with the raw client.
            conn = mqttraw.Conn(broker.port, v=mqttraw.V5, timeout=WAIT)
            conn.send(mqttraw.connect("rawpub-" + role, v=mqttraw.V5, username=USER[role],
                                      password=PASSWORDS[role].encode()))
            assert conn.read(WAIT).raw[3] == 0
            conn.send(mqttraw.publish(topic, b"{}", qos=1, mid=7, v=mqttraw.V5))
            ack = conn.read(WAIT).raw
            rc = ack[4] if len(ack) > 4 else 0
            if (rc < 0x80) != ok or (not ok and rc != 0x87):
                failures.append("%s publish %s: 0x%02x" % (role, topic, rc))
            conn.close()
        c.disconnect()
        c.loop_stop()
    assert not failures, "\n".join(failures)


def test_mqtt311_denials(broker, world):
    v = mqttraw.V311
    conn, p = raw_connect(broker, v, username=USER["viewer"], password=PASSWORDS["viewer"].encode())
    assert p.raw == mqttraw.connack()
    conn.send(mqttraw.subscribe(3, [("plant2/#", 1), ("plant1/#", 1)], v=v))
    assert conn.read(WAIT).raw == mqttraw.suback(3, [0x80, 1], v=v)
    # A denied QoS 1 publish is acknowledged and dropped (3.1.1 has no
    # negative PUBACK; Mosquitto does the same); QoS 0 is dropped silently.
    conn.send(mqttraw.publish("plant1/x", b"{}", qos=0, v=v))
    conn.send(mqttraw.publish("plant1/x", b"{}", qos=1, mid=9, v=v))
    assert conn.read(WAIT).raw == mqttraw.puback(9, v=v)
    conn.close()
    st, m = Http(broker, world["tokens"]["admin"]).call("GET", "/metrics")
    assert 'weir_mqtt_dropped_total{reason="denied"} 2' in m
    assert 'weir_auth_denied_total{action="publish"} 2' in m


def test_mosquitto_clients_with_device_acl(broker, world):
    dev = USER["device"]
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V",
                            "mqttv5", "-u", dev, "-P", PASSWORDS["device"], "-t",
                            "devices/%s/cmd/#" % dev, "-C", "1", "-W", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    adm = paho_client(broker, "admin", ADMIN_PASSWORD)

    def delivered():
        adm.publish("devices/%s/cmd/reset" % dev, "go", qos=1)
        try:
            return sub.wait(0.2) is not None
        except subprocess.TimeoutExpired:
            return False

    wait_for(delivered, timeout=20, what="the command to reach the device")
    assert sub.stdout.read().strip() == "go"
    adm.disconnect()
    ok = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", dev,
                         "-P", PASSWORDS["device"], "-t", "devices/%s/temp" % dev, "-m", "1",
                         "-q", "1"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", dev,
                          "-P", "wrong-password", "-t", "devices/%s/temp" % dev, "-m", "1"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0


# ---------------------------------------------------------------------------
# Tokens: revocation and expiry take effect at once
# ---------------------------------------------------------------------------


def test_token_revocation_is_immediate(broker, world):
    adm = world["adm"]
    st, t = adm.call("POST", "/api/v1/users/%s/tokens" % USER["operator"], {})
    h = Http(broker, t["token"])
    assert h.call("GET", "/api/v1/streams")[0] == 200
    c = paho_client(broker, "", t["token"])
    assert not isinstance(c, int)
    gone = {}
    c.on_disconnect = lambda cl, ud, rc, props=None: gone.setdefault("rc", rc)
    st, _ = adm.call("DELETE", "/api/v1/tokens/%s" % t["id"])
    assert st == 204
    assert h.call("GET", "/api/v1/streams")[0] == 401
    wait_for(lambda: "rc" in gone, what="the MQTT connection of a revoked token to close")
    c.loop_stop()
    assert paho_client(broker, "", t["token"]) == 0x86
    st, lst = adm.call("GET", "/api/v1/tokens")
    assert [x["revoked"] for x in lst["tokens"] if x["id"] == t["id"]] == [True]
    assert all("token" not in x and "secret_hash" not in x for x in lst["tokens"])


def test_token_expiry(broker, world):
    adm = world["adm"]
    st, t = adm.call("POST", "/api/v1/users/%s/tokens" % USER["viewer"], {"expires_in": 2})
    assert st == 201
    h = Http(broker, t["token"])
    assert h.call("GET", "/api/v1/streams")[0] == 200
    wait_for(lambda: h.call("GET", "/api/v1/streams")[0] == 401, timeout=10,
             what="the token to expire")


def test_password_change_and_user_delete_take_effect(broker, world):
    adm = world["adm"]
    c = paho_client(broker, USER["operator"], PASSWORDS["operator"])
    gone = {}
    c.on_disconnect = lambda cl, ud, rc, props=None: gone.setdefault("rc", rc)
    st, b = adm.call("PUT", "/api/v1/users/%s" % USER["operator"], {"password": "new-pass-123"})
    assert st == 200, b
    wait_for(lambda: "rc" in gone, what="the password change to close the connection")
    c.loop_stop()
    assert paho_client(broker, USER["operator"], PASSWORDS["operator"]) == 0x86
    c = paho_client(broker, USER["operator"], "new-pass-123")
    assert not isinstance(c, int)
    c.disconnect()
    assert adm.call("DELETE", "/api/v1/users/%s" % USER["operator"])[0] == 204
    assert Http(broker, world["tokens"]["operator"]).call("GET", "/api/v1/streams")[0] == 401


def test_cli_changes_reach_the_running_node(broker, world):
    run = lambda *a, **kw: subprocess.run([weir_bin(), "user", *a, "--data", broker.data_dir],
                                          capture_output=True, text=True, timeout=60, **kw)
    r = run("add", "clia", "--role", "viewer", "--password-stdin", input="cli-pass-1234\n")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not isinstance(paho_client(broker, "clia", "cli-pass-1234"), int)
             or None, what="the node to load a user added by the CLI")
    r = run("token", "clia", "--expires", "1h")
    assert r.returncode == 0 and r.stdout.startswith("wt_"), r.stderr
    tok = r.stdout.strip()
    h = Http(broker, tok)
    wait_for(lambda: h.call("GET", "/api/v1/streams")[0] == 200, what="the CLI token")
    assert run("del", "clia").returncode == 0
    wait_for(lambda: h.call("GET", "/api/v1/streams")[0] == 401, what="the CLI delete")
    st, recs = world["adm"].call("GET", "/api/v1/streams/$audit/records?limit=1000")
    acts = [(x["fields"]["action"], x["fields"]["target"]) for x in recs["records"]]
    assert ("user.create", "clia") in acts and ("user.delete", "clia") in acts, acts


# ---------------------------------------------------------------------------
# Brute force
# ---------------------------------------------------------------------------


def test_backoff_after_failed_logins(broker, world):
    h = Http(broker)
    for _ in range(5):
        assert h.login(USER["supplier"], "bad-password")[0] == 401
    # Now even the right password is refused for a while, with 429.
    st, b = h.login(USER["supplier"], PASSWORDS["supplier"])
    assert st == 429 and b["code"] == "EBUSY"
    # MQTT from the same address is backed off too (0x9F, 5.0).
    assert paho_client(broker, USER["supplier"], PASSWORDS["supplier"]) == 0x9F
    m = Http(broker, world["tokens"]["admin"]).call("GET", "/metrics")[1]
    assert 'weir_auth_logins_total{door="http",result="failed"} 5' in m
    assert 'weir_auth_logins_total{door="http",result="backoff"} 1' in m
    assert 'weir_auth_logins_total{door="mqtt",result="backoff"} 1' in m
    # The refusal lasts 1 s after the fifth failure, then a success clears it.
    wait_for(lambda: h.login(USER["supplier"], PASSWORDS["supplier"])[0] == 200, timeout=10,
             interval=0.3, what="the back-off to end")


# ---------------------------------------------------------------------------
# The audit trail
# ---------------------------------------------------------------------------


def test_audit_trail_records_every_kind_of_change(broker, world):
    adm = world["adm"]
    assert adm.call("POST", "/api/v1/streams", {"name": "gone", "format": "json"})[0] == 201
    assert adm.call("DELETE", "/api/v1/streams/gone")[0] == 204
    g = {"subject_kind": "role", "subject": "viewer", "resource_kind": "stream",
         "pattern": "plant2", "access": "read"}
    assert adm.call("POST", "/api/v1/grants", g)[0] == 201
    assert adm.call("DELETE", "/api/v1/grants", g)[0] == 200
    assert adm.call("PUT", "/api/v1/users/%s" % USER["viewer"], {"role": "supplier"})[0] == 200
    Http(broker).login(USER["viewer"], "bad-password")

    def actions():
        st, recs = adm.call("GET", "/api/v1/streams/$audit/records?limit=1000")
        assert st == 200, recs
        return [x["fields"] for x in recs["records"]]

    want = {"login", "login.failed", "user.create", "token.create", "grant.put", "grant.delete",
            "stream.create", "stream.delete", "user.role"}
    wait_for(lambda: want <= {a["action"] for a in actions()}, what="every audit entry")
    entries = actions()
    e = [a for a in entries if a["action"] == "grant.put"][0]
    assert e["who"] == "admin" and e["from"].startswith("127.0.0.1:") and e["ok"] is True
    assert e["at"].endswith("Z")
    failed = [a for a in entries if a["action"] == "login.failed"]
    assert failed and failed[-1]["target"] == USER["viewer"] and failed[-1]["ok"] is False
    # Append-only: not droppable, not writable, not readable by others.
    assert adm.call("DELETE", "/api/v1/streams/$audit")[0] in (403, 409)
    assert adm.call("POST", "/api/v1/streams/$audit/records", '[{"x":1}]')[0] == 403
    mgr = Http(broker, world["tokens"]["manager"])
    assert mgr.call("GET", "/api/v1/streams/$audit/records")[0] == 403


# ---------------------------------------------------------------------------
# Secrets never in clear
# ---------------------------------------------------------------------------


def test_passwords_and_tokens_never_stored_or_logged(broker, world):
    # Exercise logins of every kind, then stop the node so everything is on disk.
    for r in ROLES:
        Http(broker).login(USER[r], PASSWORDS[r])
        c = paho_client(broker, USER[r], PASSWORDS[r])
        c.disconnect()
        c.loop_stop()
    Http(broker).login(USER["viewer"], "a-wrong-password-xyz")
    broker.stop()
    secrets = [p.encode() for p in PASSWORDS.values()] + [b"a-wrong-password-xyz"]
    secrets += [t.encode() for t in world["tokens"].values()]
    secrets += [t.split(".")[1].encode() for t in world["tokens"].values()]
    found = []
    for root, _, files in os.walk(os.path.dirname(broker.data_dir)):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                data = fh.read()
            for s in secrets:
                if s in data:
                    found.append("%s in %s" % (s[:6], path))
    assert not found, found


def test_grant_changes_apply_to_live_connections_and_sessions(broker, world):
    adm = world["adm"]
    dev = USER["device"]
    conn = mqttraw.Conn(broker.port, v=mqttraw.V5, timeout=WAIT)
    conn.send(mqttraw.connect("live-dev", v=mqttraw.V5, username=dev,
                              password=PASSWORDS["device"].encode()))
    assert conn.read(WAIT).raw[3] == 0
    mid = [0]

    def publish_code():
        mid[0] += 1
        conn.send(mqttraw.publish("extra/x", b"{}", qos=1, mid=mid[0], v=mqttraw.V5))
        ack = conn.read(WAIT).raw
        return ack[4] if len(ack) > 4 else 0

    assert publish_code() == 0x87
    viewer = Http(broker)
    assert viewer.login(USER["viewer"], PASSWORDS["viewer"])[0] == 200
    assert viewer.call("GET", "/api/v1/streams/plant2/records")[0] == 403
    for g in ({"subject_kind": "user", "subject": dev, "resource_kind": "topic",
               "pattern": "extra/#", "access": "write"},
              {"subject_kind": "role", "subject": "viewer", "resource_kind": "stream",
               "pattern": "plant2", "access": "read"}):
        assert adm.call("POST", "/api/v1/grants", g)[0] == 201
    # The same connection and the same session, without logging in again.
    wait_for(lambda: publish_code() < 0x80, what="the new grant on the live connection")
    assert viewer.call("GET", "/api/v1/streams/plant2/records")[0] == 200
    conn.close()


def test_packets_pipelined_behind_a_connect_wait_for_its_verdict(broker, world):
    """CONNECT, SUBSCRIBE and PUBLISH in one write: the password is checked
    off the loop, and what followed the CONNECT is handled after the
    verdict, in order (refused packets are never handled)."""
    v = mqttraw.V5
    mgr = USER["manager"]  # never logged in yet: not in the verification cache
    hits = lambda: [l for l in Http(broker, world["tokens"]["admin"]).call("GET", "/metrics")[1]
                    .splitlines() if l.startswith("weir_auth_cache_hits_total ")]
    before = hits()
    conn = mqttraw.Conn(broker.port, v=v, timeout=WAIT)
    conn.send(mqttraw.connect("pipe-ok", v=v, username=mgr, password=PASSWORDS["manager"].encode())
              + mqttraw.subscribe(1, [("pipe/#", 1)], v=v)
              + mqttraw.publish("pipe/x", b"hello", qos=1, mid=2, v=v))
    got = [conn.read(WAIT).raw for _ in range(3)]
    assert got[0][0] == 0x20 and got[0][3] == 0          # CONNACK success
    assert got[1][0] == 0x90                              # SUBACK
    kinds = sorted(p[0] & 0xF0 for p in got[1:]) + [conn.read(WAIT).raw[0] & 0xF0]
    assert 0x40 in kinds and 0x30 in kinds, kinds         # PUBACK and the message itself
    conn.close()
    assert hits() == before  # the verification ran on the thread pool
    bad = mqttraw.Conn(broker.port, v=v, timeout=WAIT)
    bad.send(mqttraw.connect("pipe-bad", v=v, username=mgr, password=b"wrong-password")
             + mqttraw.publish("pipe/x", b"nope", qos=1, mid=3, v=v))
    p = bad.read(WAIT).raw
    assert p[0] == 0x20 and p[3] == 0x86
    with pytest.raises(mqttraw.Closed):
        bad.read(WAIT)
    bad.close()


def test_users_change_their_own_password_only_with_the_current_one(broker, world):
    me = Http(broker, world["tokens"]["viewer"])
    path = "/api/v1/users/%s" % USER["viewer"]
    st, b = me.call("PUT", path, {"password": "brand-new-pass"})
    assert st == 400 and "current_password" in b["error"]
    st, b = me.call("PUT", path, {"password": "brand-new-pass", "current_password": "nope-nope"})
    assert st == 403 and b["code"] == "EAUTH"
    st, b = me.call("PUT", path, {"password": "brand-new-pass",
                                  "current_password": PASSWORDS["viewer"]})
    assert st == 200, b
    assert Http(broker).login(USER["viewer"], "brand-new-pass")[0] == 200
    # Not someone else's, nor one's own role.
    assert me.call("PUT", "/api/v1/users/%s" % USER["manager"], {"password": "x" * 10})[0] == 403
    assert me.call("PUT", path, {"role": "admin"})[0] == 403


def test_cli_clients_use_weir_token(broker, world):
    url = "http://127.0.0.1:%d" % broker.http_port
    args = [weir_bin(), "sql", "--json", "--url", url, "SELECT count(*) AS n FROM plant1"]
    env = {k: v for k, v in os.environ.items() if k != "WEIR_TOKEN"}
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0
    env["WEIR_TOKEN"] = world["tokens"]["viewer"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    env["WEIR_TOKEN"] = world["tokens"]["supplier"]  # not granted plant1
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode != 0
