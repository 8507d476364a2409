"""Live feeds (/api/v1/live) through the real binary: records pushed over
WebSocket and Server-Sent Events as they commit, after HTTP POSTs and MQTT
publishes; key and field filters; start positions; errors; and a slow
consumer (a client that stops reading) disconnected with a reason while
another client keeps receiving everything."""

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests
import websockets

from conftest import WAIT, TARGET, let_time_pass, wait_for

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: live feeds")


def url(broker, path):
    return "http://127.0.0.1:%d%s" % (broker.http_port, path)


def ws_url(broker, query=""):
    return "ws://127.0.0.1:%d/api/v1/live%s" % (broker.http_port, query)


def define(broker, name, source=None, sync="none", partitions=1):
    d = {"name": name, "key": "device", "timestamp": "ts", "sync": sync,
         "partitions": partitions}
    if source:
        d["source"] = source
    r = requests.post(url(broker, "/api/v1/streams"), json=d, timeout=10)
    assert r.status_code in (200, 201), r.text


def post(broker, name, records):
    body = "\n".join(json.dumps(r) for r in records)
    r = requests.post(url(broker, "/api/v1/streams/%s/records" % name), data=body,
                      headers={"Content-Type": "application/x-ndjson"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(records)


class RawWs:
    """A WebSocket client over a plain socket with a small receive buffer,
    reading only when asked (so it can play a client that stops reading)."""
    def __init__(self, port, query, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /api/v1/live%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (query, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            c = self.sock.recv(4096)
            assert c
            self.buf += c
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
    def _need(self, n):
        while len(self.buf) < n:
            c = self.sock.recv(65536)
            if not c:
                raise EOFError
            self.buf += c
    def recv(self):
        """('text', str) or ('close', code, reason); EOFError at end."""
        msg = b""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                self._need(4); n = struct.unpack(">H", self.buf[2:4])[0]; off = 4
            elif n == 127:
                self._need(10); n = struct.unpack(">Q", self.buf[2:10])[0]; off = 10
            self._need(off + n)
            payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
            op = b0 & 0x0F
            if op == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                return ("close", code, payload[2:].decode())
            if op in (1, 0):
                msg += payload
                if b0 & 0x80:
                    return ("text", msg.decode())
    def close(self):
        self.sock.close()


class Sse:
    """An SSE client over a plain socket on a thread (so every event is seen
    as soon as it arrives, without a library's read-ahead): collects
    (event, data) pairs."""

    def __init__(self, broker, query):
        self.sock = socket.create_connection(("127.0.0.1", broker.http_port), timeout=WAIT)
        self.sock.sendall(("GET /api/v1/live%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Accept: text/event-stream\r\n\r\n" % query).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, "closed before the headers"
            data += chunk
        head, self.rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        self.events = []
        self.closed = False
        self.sock.settimeout(None)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        buf = self.rest
        try:
            while True:
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    ev, data = None, []
                    for line in block.decode().split("\n"):
                        if line.startswith("event: "):
                            ev = line[7:]
                        elif line.startswith("data: "):
                            data.append(line[6:])
                    if data and self.status == 200:
                        self.events.append((ev, json.loads("\n".join(data))))
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:
            pass
        self.body = buf
        self.closed = True

    def records(self):
        return [d for e, d in self.events if e == "record"]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def test_ws_push_after_post_and_mqtt(broker):
    define(broker, "live1", source="mqtt:plant/+/m")

    async def run():
        async with websockets.connect(ws_url(broker, "?stream=live1")) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert hello["type"] == "subscribed" and hello["stream"] == "live1"
            t_post = time.time_ns()
            await asyncio.to_thread(post, broker, "live1",
                                    [{"device": "d1", "ts": 1700000000000 + i, "v": i}
                                     for i in range(5)])
            await asyncio.to_thread(subprocess.run,
                                    ["mosquitto_pub", "-p", str(broker.port), "-q", "1",
                                     "-t", "plant/d2/m",
                                     "-m", json.dumps({"device": "d2", "ts": 1700000001000,
                                                       "v": 42})], check=True)
            got = []
            while len(got) < 6:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
            return t_post, got

    t_post, got = asyncio.run(run())
    assert [m["offset"] for m in got] == list(range(6))
    for m in got:
        assert m["type"] == "record" and m["stream"] == "live1" and m["partition"] == 0
        # T2 <= T3 <= T4, all after the test started posting (one clock).
        assert t_post <= m["arrival_ns"] <= m["commit_ns"] <= m["push_ns"]
    assert [m["fields"]["v"] for m in got[:5]] == [0, 1, 2, 3, 4]
    assert got[5]["key"] == "d2" and got[5]["fields"]["v"] == 42
    assert got[5]["ts_ns"] == 1700000001000 * 1000000


def test_sse_key_and_field_filters(broker):
    define(broker, "live2", partitions=4)
    a = Sse(broker, "?stream=live2&key=d3&fields=v")
    everything = Sse(broker, "?stream=live2")
    assert a.status == 200 and everything.status == 200
    assert a.headers["content-type"].startswith("text/event-stream")
    wait_for(lambda: a.events and everything.events, what="subscribed events")
    assert a.events[0][0] == "subscribed"
    recs = [{"device": "d%d" % (i % 5), "ts": 1700000000000 + i, "v": i, "w": -i}
            for i in range(100)]
    post(broker, "live2", recs)
    wait_for(lambda: len(everything.records()) == 100, what="all 100 records over SSE")
    wait_for(lambda: len(a.records()) == 20, what="the 20 records of key d3")
    got = a.records()
    assert sorted(m["fields"]["v"] for m in got) == [i for i in range(100) if i % 5 == 3]
    assert all(m["key"] == "d3" and list(m["fields"]) == ["v"] for m in got)
    # One key lives in one partition, and its offsets grow.
    assert len({m["partition"] for m in got}) == 1
    offs = [m["offset"] for m in got]
    assert offs == sorted(offs)
    keys = {(m["partition"], m["offset"]) for m in everything.records()}
    assert len(keys) == 100
    a.close()
    everything.close()


def test_from_earliest_and_subscribe_message(broker):
    define(broker, "live3")
    post(broker, "live3", [{"device": "x", "ts": 1700000000000 + i, "v": i} for i in range(10)])

    async def run():
        async with websockets.connect(ws_url(broker)) as ws:
            await ws.send(json.dumps({"type": "subscribe", "stream": "live3", "from": 7,
                                      "fields": ["v"]}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert hello["type"] == "subscribed"
            first = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(3)]
            await ws.send(json.dumps({"type": "subscribe", "stream": "live3",
                                      "from": "earliest"}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            again = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(10)]
            return first, again

    first, again = asyncio.run(run())
    assert [m["fields"] for m in first] == [{"v": 7}, {"v": 8}, {"v": 9}]
    assert [m["offset"] for m in again] == list(range(10))


def test_errors(broker):
    r = requests.get(url(broker, "/api/v1/live?stream=nope"),
                     headers={"Accept": "text/event-stream"}, timeout=10)
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = requests.get(url(broker, "/api/v1/live"), timeout=10)
    assert r.status_code == 400
    r = requests.get(url(broker, "/api/v1/live?rule=r1"), timeout=10)
    assert r.status_code == 404 and "r1" in r.json()["error"]
    r = requests.get(url(broker, "/api/v1/live?rule=r1&stream=s"), timeout=10)
    assert r.status_code == 400

    async def run():
        async with websockets.connect(ws_url(broker)) as ws:
            await ws.send("not json")
            msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert msg["type"] == "error"
            with pytest.raises(websockets.ConnectionClosed) as e:
                await asyncio.wait_for(ws.recv(), WAIT)
            assert e.value.rcvd.code == 1008

    asyncio.run(run())


@pytest.mark.parametrize("config", [{"http.live_buffer": "64k", "http.live_slow": "1s"}])
def test_slow_consumer_disconnected_others_unaffected(make_broker, config):
    broker = make_broker(config)
    define(broker, "live4")
    n_batches, per_batch = 8, 500
    total = n_batches * per_batch
    pad = "x" * 1000

    async def run():
        # The slow client: a tiny receive buffer, and it reads nothing until
        # the end (a plain-socket client: websockets reads ahead).
        slow = RawWs(broker.http_port, "?stream=live4", rcvbuf=4096)
        assert json.loads(slow.recv()[1])["type"] == "subscribed"
        fast = await websockets.connect(ws_url(broker, "?stream=live4"), max_size=None)
        sse = Sse(broker, "?stream=live4&fields=i")
        assert json.loads(await fast.recv())["type"] == "subscribed"
        wait_for(lambda: sse.events, what="SSE subscribed")
        received = 0

        async def reader():
            nonlocal received
            while received < total:
                m = json.loads(await asyncio.wait_for(fast.recv(), WAIT))
                assert m["type"] == "record" and m["offset"] == received
                received += 1

        task = asyncio.create_task(reader())
        for b in range(n_batches):
            await asyncio.to_thread(post, broker, "live4",
                                    [{"device": "d", "ts": 1700000000000 + b * per_batch + i,
                                      "i": b * per_batch + i, "pad": pad}
                                     for i in range(per_batch)])
        await task
        await fast.close()
        await asyncio.to_thread(wait_for, lambda: "event=slow_consumer" in broker.read_log(),
                                WAIT, "the slow consumer's disconnection")
        # Now the slow one reads: some records, then the reason, then 1008.
        slow.sock.settimeout(WAIT)
        last, n = None, 0
        while True:
            m = slow.recv()
            if m[0] == "close":
                break
            last = json.loads(m[1])
            n += 1
        slow.close()
        return sse, received, last, m, n

    sse, received, last, close, n_slow = asyncio.run(run())
    assert received == total
    assert last["type"] == "error" and last["error"].startswith("slow consumer: ")
    assert close[1] == 1008 and close[2].startswith("slow consumer: ")
    assert n_slow < total
    # The SSE client (fields filter: small messages) kept up and got all.
    wait_for(lambda: len(sse.records()) == total, what="every record over SSE")
    assert [m["fields"]["i"] for m in sse.records()] == list(range(total))
    sse.close()
    assert broker.read_log().count("event=slow_consumer") == 1
    metrics = requests.get(url(broker, "/metrics"), timeout=10).text
    assert "weir_live_slow_consumers_total 1" in metrics


@pytest.mark.parametrize("config", [{"http.live_buffer": "64k", "http.live_slow": "1s"}])
def test_slow_sse_consumer(make_broker, config):
    broker = make_broker(config)
    define(broker, "live5")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", broker.http_port))
    sock.sendall(b"GET /api/v1/live?stream=live5 HTTP/1.1\r\nHost: x\r\n"
                 b"Accept: text/event-stream\r\n\r\n")
    pad = "y" * 1000
    for b in range(6):
        post(broker, "live5", [{"device": "d", "ts": 1700000000000 + b * 500 + i, "pad": pad}
                               for i in range(500)])
    wait_for(lambda: "event=slow_consumer" in broker.read_log(), what="slow consumer logged")
    sock.settimeout(WAIT)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert b"HTTP/1.1 200" in data[:200]
    events = data.split(b"\r\n\r\n", 1)[1].split(b"\n\n")
    assert events[-1] == b""
    parsed = []
    for ev in events[:-1]:
        lines = dict(ln.split(b": ", 1) for ln in ev.split(b"\n"))
        parsed.append((lines[b"event"], json.loads(lines[b"data"])))
    # Whole events only (the discard never cuts one), the reason last.
    assert parsed[0][0] == b"subscribed"
    assert all(e == b"record" for e, _ in parsed[1:-1])
    offsets = [d["offset"] for _, d in parsed[1:-1]]
    assert offsets == list(range(len(offsets))) and len(offsets) < 3000
    assert parsed[-1][0] == b"error" and parsed[-1][1]["error"].startswith("slow consumer: ")


def test_rule_output_feed(broker):
    define(broker, "live6")
    r = requests.post(url(broker, "/api/v1/rules"), timeout=10, json={
        "sql": "CREATE RULE hot AS SELECT device, v * 2 AS v2 FROM live6 WHERE v >= 5 "
               "EMIT TO 'stream:hot_out'", "start": True})
    assert r.status_code == 201, r.text
    ws_all = Sse(broker, "?rule=hot")
    keyed = Sse(broker, "?rule=hot&key=d1&fields=v2")
    assert ws_all.status == 200 and keyed.status == 200
    wait_for(lambda: ws_all.events and keyed.events, what="subscribed")
    assert ws_all.events[0][1]["rule"] == "hot"
    post(broker, "live6", [{"device": "d%d" % (i % 2), "ts": 1700000000000 + i, "v": i}
                           for i in range(10)])
    rows = lambda sse: [d for e, d in sse.events if e == "row"]
    wait_for(lambda: len(rows(ws_all)) == 5, what="five rows of the rule")
    wait_for(lambda: len(rows(keyed)) == 3, what="three rows of key d1")
    got = rows(ws_all)
    assert sorted(m["fields"]["v2"] for m in got) == [10, 12, 14, 16, 18]
    for m in got:
        assert m["type"] == "row" and m["rule"] == "hot"
        assert m["commit_ns"] <= m["push_ns"]
    assert [m["fields"] for m in rows(keyed)] == [{"v2": 10}, {"v2": 14}, {"v2": 18}]
    # Deleting the rule ends its feeds with a reason.
    assert requests.delete(url(broker, "/api/v1/rules/hot"), timeout=10).status_code in (200, 204)
    wait_for(lambda: ws_all.closed and keyed.closed, what="feeds closed")
    assert ws_all.events[-1][0] == "error" and "deleted" in ws_all.events[-1][1]["error"]
    ws_all.close()
    keyed.close()


def test_idle_feeds_stay_open(broker):
    """An idle feed is not cut by the HTTP server's timeouts (lws's default
    is 5 s for a connection that is answering)."""
    define(broker, "live7")
    sse = Sse(broker, "?stream=live7")
    wait_for(lambda: sse.events, what="subscribed")

    async def run():
        async with websockets.connect(ws_url(broker, "?stream=live7"), ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "subscribed"
            await asyncio.to_thread(let_time_pass, 7)
            await asyncio.to_thread(post, broker, "live7", [{"device": "a", "v": 1}])
            return json.loads(await asyncio.wait_for(ws.recv(), WAIT))

    m = asyncio.run(run())
    assert m["type"] == "record" and m["fields"]["v"] == 1
    wait_for(lambda: sse.records(), what="the record over SSE after 7 s idle")
    assert not sse.closed
    sse.close()
