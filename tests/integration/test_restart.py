"""Durable broker state across a clean restart: SIGTERM (exit status 0
checked), then the same binary on the same data directory and ports.
Retained messages, persistent sessions with their subscriptions, queued
messages and unacknowledged in-flight messages must all come back."""

import pytest

import mqttraw as m
from conftest import WAIT

VERSIONS = [pytest.param(m.V311, id="v311"), pytest.param(m.V5, id="v5")]


def persistent(conn, cid):
    """3.1.1: clean session 0; 5.0: clean start 0 with a session expiry."""
    props = {"session_expiry": 3600} if conn.v == m.V5 else None
    return conn.connect(cid, clean=False, properties=props)


@pytest.mark.parametrize("v", VERSIONS)
def test_retained_messages_survive_restart(broker, raw, v):
    c = raw(v)
    c.connect("rs-retain-pub")
    c.publish("rs/ret/a", b"alpha", qos=1, retain=True, mid=1)
    c.publish("rs/ret/b", b"beta", qos=1, retain=True, mid=2)
    c.publish("rs/ret/b", b"beta 2", qos=1, retain=True, mid=3)   # replaced
    c.publish("rs/ret/c", b"gamma", qos=1, retain=True, mid=4)
    c.publish("rs/ret/c", b"", qos=1, retain=True, mid=5)         # deleted
    c.publish("rs/ret/d", b"not retained", qos=1, mid=6)
    c.close()

    broker.restart()

    s = raw(v)
    s.connect("rs-retain-sub")
    assert s.subscribe(1, [("rs/ret/+", 1)]) == [1]
    got = sorted((p.topic, p.payload, p.retain) for p in (s.recv_publish(), s.recv_publish()))
    assert got == [("rs/ret/a", b"alpha", True), ("rs/ret/b", b"beta 2", True)]
    p = raw(v)
    p.connect("rs-retain-marker")
    p.publish("rs/ret/marker", b"marker", qos=1)
    nxt = s.recv_publish()
    assert (nxt.topic, nxt.retain) == ("rs/ret/marker", False), \
        "unexpected retained message after restart: %r" % nxt


@pytest.mark.parametrize("v", VERSIONS)
def test_offline_session_queue_survives_restart(broker, raw, v):
    cid = "rs-offline-%d" % v
    s = raw(v)
    assert not persistent(s, cid).session_present
    assert s.subscribe(1, [("rs/q/one", 1), ("rs/q/two", 2)]) == [1, 2]
    s.send(m.disconnect(v=v))
    s.close()

    p = raw(v)
    p.connect("rs-offline-pub")
    sent = []
    for i in range(5):
        p.publish("rs/q/one", b"q1 %d" % i, qos=1, mid=i + 1)
        sent.append(("rs/q/one", b"q1 %d" % i, 1))
    for i in range(2):
        p.publish("rs/q/two", b"q2 %d" % i, qos=2, mid=10 + i)
        sent.append(("rs/q/two", b"q2 %d" % i, 2))
    p.close()

    broker.restart()

    back = raw(v)
    assert persistent(back, cid).session_present, "session lost in the restart"
    got = [back.recv_publish() for _ in sent]
    triples = [(x.topic, x.payload, x.qos) for x in got]
    assert sorted(triples) == sorted(sent)
    for qos in (1, 2):  # order kept per QoS level
        assert [t for t in triples if t[2] == qos] == [t for t in sent if t[2] == qos]
    # The subscriptions came back too, and nothing else is queued.
    p = raw(v)
    p.connect("rs-offline-pub2")
    p.publish("rs/q/one", b"live", qos=1)
    assert back.recv_publish().payload == b"live"


@pytest.mark.parametrize("v", VERSIONS)
def test_unacknowledged_inflight_survives_restart(broker, raw, v):
    cid = "rs-inflight-%d" % v
    s = raw(v)
    persistent(s, cid)
    assert s.subscribe(1, [("rs/inflight", 1)]) == [1]
    p = raw(v)
    p.connect("rs-inflight-pub")
    p.publish("rs/inflight", b"unacked", qos=1)
    first = s.recv_publish(ack=False)
    assert (first.payload, first.dup) == (b"unacked", False)
    s.abort()
    p.close()

    broker.restart()

    back = raw(v)
    assert persistent(back, cid).session_present
    again = back.recv_publish()
    # Resent with DUP; the packet identifier is the original one, or, for a
    # broker that renumbers on restart, at least a valid one.
    assert (again.topic, again.payload, again.qos, again.dup) == (
        "rs/inflight", b"unacked", 1, True)
    assert again.mid != 0


def test_restart_twice(broker, raw):
    """Two restarts in a row: what was restored is saved again."""
    c = raw(m.V5)
    c.connect("rs-twice")
    c.publish("rs/twice", b"still here", qos=1, retain=True)
    c.close()
    broker.restart()
    broker.restart()
    s = raw(m.V5)
    s.connect("rs-twice-sub")
    assert s.subscribe(1, [("rs/twice", 1)]) == [1]
    got = s.recv_publish()
    assert (got.payload, got.retain) == (b"still here", True)


@pytest.mark.parametrize("v", VERSIONS)
def test_shutdown_with_clients_connected(broker, raw, v):
    """SIGTERM while clients are connected, one with a persistent session
    holding an unacknowledged message: the broker closes them, exits 0 (as
    stop() checks), and afterwards the session and its message are back."""
    cid = "rs-connected-%d" % v
    s = raw(v)
    persistent(s, cid)
    assert s.subscribe(1, [("rs/connected", 1)]) == [1]
    other = raw(v)
    other.connect("rs-connected-other")
    other.publish("rs/connected", b"in flight", qos=1)
    first = s.recv_publish(ack=False)
    assert (first.payload, first.dup) == (b"in flight", False)

    broker.stop()
    for c in (s, other):
        got = c.wait_closed(WAIT)
        if v == m.V5:
            # 0x8B Server shutting down, when a DISCONNECT is sent at all.
            assert all(p.type == m.DISCONNECT and p.rc == 0x8B for p in got), got
        else:
            assert got == []
    broker.start(new_ports=False)

    back = raw(v)
    assert persistent(back, cid).session_present
    again = back.recv_publish()
    assert (again.topic, again.payload, again.qos, again.dup) == (
        "rs/connected", b"in flight", 1, True)
