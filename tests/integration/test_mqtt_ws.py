"""MQTT over WebSocket (ws://HOST:HTTP_PORT/mqtt, subprotocol "mqtt") with
MQTT.js under Node, crossing messages with TCP clients (mosquitto_pub and
mosquitto_sub) through the same broker. MQTT.js comes from tests/node_modules
(`npm ci` in tests/, which scripts/deps.sh runs)."""

import hashlib
import json
import os
import shutil
import signal
import time

import pytest

from conftest import SRC, WAIT, MosquittoSub, http_get, mosquitto_pub, run, weir_only

TESTS_DIR = os.path.join(SRC, "tests")
SCRIPT = os.path.join(TESTS_DIR, "integration", "ws_client.mjs")
VERSIONS = [pytest.param(4, id="v311"), pytest.param(5, id="v5")]
CLI_VERSION = {4: "mqttv311", 5: "mqttv5"}


@pytest.fixture(autouse=True)
def need_node():
    if shutil.which("node") is None:
        pytest.fail("node is not installed (scripts/deps.sh test installs it)")
    if not os.path.isdir(os.path.join(TESTS_DIR, "node_modules", "mqtt")):
        pytest.fail("MQTT.js missing: run `npm ci` in %s (scripts/deps.sh test does)" % TESTS_DIR)


def pattern(size):
    return (b"0123456789abcdef" * (size // 16 + 1))[:size]


class WsClient:
    """ws_client.mjs: commands go to its stdin, events come back as JSON."""

    def __init__(self, procs, broker, client_id, v=4, **extra):
        args = ["node", SCRIPT, "--url=" + broker.ws_url, "--id=" + client_id,
                "--version=%d" % v]
        args += ["--%s=%s" % (k.replace("_", "-"), val) for k, val in extra.items()]
        self.proc = procs(args, stdin=True, cwd=TESTS_DIR)
        self.next_id = 0
        self.backlog = []
        self.connack = self.event("connect", timeout=WAIT * 2)  # node starts slowly

    def event(self, name, pred=lambda e: True, timeout=WAIT):
        """The first event called `name` that satisfies pred, whether it
        already arrived or arrives within the timeout. Events skipped on
        the way are kept for later calls (a message may come before the
        ack of the subscription that brought it). An error event fails."""
        for i, e in enumerate(self.backlog):
            if e["event"] == name and pred(e):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            line = self.proc.next_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                pytest.fail("ws client exited before event %s\n%s" % (name, self.proc.describe()))
            e = json.loads(line)
            if e["event"] == "error":
                pytest.fail("ws client error: %s\n%s" % (e, self.proc.describe()))
            if e["event"] == name and pred(e):
                return e
            self.backlog.append(e)

    def _cmd(self, **cmd):
        self.next_id += 1
        cmd["id"] = self.next_id
        self.proc.send(json.dumps(cmd) + "\n")
        return self.next_id

    def subscribe(self, topic, qos=0):
        i = self._cmd(op="subscribe", topic=topic, qos=qos)
        return [g["qos"] for g in self.event("subscribed", lambda e: e["id"] == i)["granted"]]

    def publish(self, topic, payload=None, qos=0, retain=False, size=None):
        cmd = {"op": "publish", "topic": topic, "qos": qos, "retain": retain}
        if size is not None:
            cmd["size"] = size
        else:
            cmd["payload"] = payload
        i = self._cmd(**cmd)
        self.event("published", lambda e: e["id"] == i)

    def message(self, timeout=WAIT):
        return self.event("message", timeout=timeout)

    def end(self):
        self._cmd(op="end")
        self.event("ended")
        assert self.proc.wait() == 0


@pytest.mark.parametrize("v", VERSIONS)
def test_ws_and_tcp_cross_delivery(broker, procs, v):
    tcp = MosquittoSub(procs, broker, "ws/from-ws/#", qos=2,
                       version=CLI_VERSION[v]).wait_subscribed()
    ws = WsClient(procs, broker, "ws-cross-%d" % v, v=v)
    assert ws.connack["sessionPresent"] is False
    assert ws.subscribe("ws/from-tcp/#", 2) == [2]

    for qos in (0, 1, 2):
        ws.publish("ws/from-ws/%d" % qos, "hello from ws %d" % qos, qos=qos)
        got = tcp.message()
        assert (got["topic"], got["payload"], got["qos"]) == (
            "ws/from-ws/%d" % qos, "hello from ws %d" % qos, qos)

        mosquitto_pub(broker, "ws/from-tcp/%d" % qos, "hello from tcp %d" % qos, qos=qos,
                      version=CLI_VERSION[v])
        got = ws.message()
        assert (got["topic"], got["payload"], got["qos"], got["retain"]) == (
            "ws/from-tcp/%d" % qos, "hello from tcp %d" % qos, qos, False)
    ws.end()


def test_ws_large_messages(broker, procs, tmp_path):
    size = 300 * 1024  # many WebSocket frames / TCP segments
    tcp = MosquittoSub(procs, broker, "ws/big/from-ws", qos=1).wait_subscribed()
    ws = WsClient(procs, broker, "ws-big", v=5)
    assert ws.subscribe("ws/big/from-tcp", 1) == [1]

    ws.publish("ws/big/from-ws", qos=1, size=size)
    got = tcp.message(timeout=WAIT * 2)
    assert got["payloadlen"] == size
    assert got["payload"].encode() == pattern(size)

    # Smaller the other way: Mosquitto 2.0.11 writes to WebSockets at about
    # 40 KB/s, and the suite must stay quick when validated against it.
    size = 64 * 1024
    f = tmp_path / "big.bin"
    data = bytes((i * 7 + 3) % 251 for i in range(size))
    f.write_bytes(data)
    run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
         "-t", "ws/big/from-tcp", "-f", str(f)])
    got = ws.message(timeout=WAIT * 2)
    assert got["len"] == size and got["sha256"] == hashlib.sha256(data).hexdigest()
    ws.end()


def test_ws_retained_for_tcp_and_tcp_retained_for_ws(broker, procs):
    ws = WsClient(procs, broker, "ws-retain-pub", v=4)
    ws.publish("ws/retained/a", "kept by ws", qos=1, retain=True)
    mosquitto_pub(broker, "ws/retained/b", "kept by tcp", qos=1, retain=True)
    ws.end()

    tcp = MosquittoSub(procs, broker, "ws/retained/a", qos=1)
    got = tcp.message()
    assert (got["payload"], got["retain"]) == ("kept by ws", 1)

    late = WsClient(procs, broker, "ws-retain-sub", v=5)
    assert late.subscribe("ws/retained/b", 1) == [1]
    got = late.message()
    assert (got["payload"], got["retain"]) == ("kept by tcp", True)
    late.end()


@pytest.mark.parametrize("v", VERSIONS)
def test_ws_will_on_abnormal_close(broker, procs, v):
    tcp = MosquittoSub(procs, broker, "ws/will/#", qos=1,
                       version=CLI_VERSION[v]).wait_subscribed()
    ws = WsClient(procs, broker, "ws-will-%d" % v, v=v, will_topic="ws/will/status",
                  will_payload="ws client lost", will_qos=1)
    ws.publish("ws/will/data", "alive", qos=1)
    assert tcp.message()["payload"] == "alive"
    ws.proc.p.send_signal(signal.SIGKILL)  # the TCP connection under the WebSocket drops
    ws.proc.wait()
    got = tcp.message()
    assert (got["topic"], got["payload"], got["qos"]) == ("ws/will/status", "ws client lost", 1)


def test_ws_persistent_session(broker, procs):
    first = WsClient(procs, broker, "ws-persist", v=4, clean=0)
    assert first.subscribe("ws/persist", 1) == [1]
    first.end()
    for i in range(3):
        mosquitto_pub(broker, "ws/persist", "queued %d" % i, qos=1)
    back = WsClient(procs, broker, "ws-persist", v=4, clean=0)
    assert back.connack["sessionPresent"] is True
    assert [back.message()["payload"] for _ in range(3)] == ["queued %d" % i for i in range(3)]
    back.end()


@weir_only("/healthz is weir's HTTP API")
def test_healthz(broker):
    status, body = http_get(broker.http_port, "/healthz")
    assert status == 200, (status, body)
