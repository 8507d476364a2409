"""Byte-level conformance: raw packets, both protocol versions.

Every malformed or forbidden packet must make the broker close that one
connection (for 5.0 after a DISCONNECT with the matching reason code, see
conftest.expect_protocol_error) and nothing else: the `witness`, a client
connected before the violation, must still get a QoS 1 round trip through.
Where the specification allows more than one encoding (5.0 acks may omit a
success reason code and empty properties) the check accepts each; elsewhere
the bytes are compared exactly.
"""

import time

import pytest

import mqttraw as m
from conftest import TARGET, WAIT, expect_protocol_error, let_time_pass

VERSIONS = [pytest.param(m.V311, id="v311"), pytest.param(m.V5, id="v5")]


def check_ack(p, ptype, mid, v):
    """A success ack of type `ptype` for `mid`: exact bytes for 3.1.1; for
    5.0 any of the three encodings of "success, no properties" (2.2.2 and
    3.4.2.1: the reason code and the property length may be omitted)."""
    flags = 0x02 if ptype == m.PUBREL else 0
    head = bytes([(ptype << 4) | flags])
    short = head + b"\x02" + m.u16(mid)
    if v == m.V311:
        assert p.raw == short, "expected %s, got %s" % (short.hex(" "), p.raw.hex(" "))
    else:
        ok = (short, head + b"\x03" + m.u16(mid) + b"\x00",
              head + b"\x04" + m.u16(mid) + b"\x00\x00")
        assert p.raw in ok, "expected success %s for %d, got %r" % (m.TYPE_NAMES[ptype], mid, p)


# ---------------------------------------------------------------------------
# CONNECT phase
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.parametrize("first", [
    pytest.param(lambda v: m.pingreq(), id="pingreq"),
    pytest.param(lambda v: m.publish("proto/first", b"x", v=v), id="publish"),
    pytest.param(lambda v: m.subscribe(1, [("proto/#", 0)], v=v), id="subscribe"),
])
def test_first_packet_must_be_connect(broker, raw, witness, v, first):
    c = raw(v)
    c.send(first(v))
    # Nothing may be sent before CONNACK, and no CONNACK is due.
    assert c.wait_closed(WAIT) == []
    witness.check()


@pytest.mark.parametrize("v", VERSIONS)
def test_second_connect_is_a_protocol_error(broker, raw, witness, v):
    c = raw(v)
    c.connect("proto-second")
    c.send(m.connect("proto-second", v=v))
    expect_protocol_error(broker, c, m.RC_PROTOCOL_ERROR)
    witness.check()


def _refusal_connack(p):
    """True for the two CONNACKs a server may use to refuse a protocol it
    does not speak: 3.1.1's 0x01 (3.1.2-2) or 5.0's 0x84 (3.1.2.2)."""
    if p.type != m.CONNACK:
        return False
    if p.raw == b"\x20\x02\x00\x01":
        return True
    return len(p.body) >= 3 and p.body[1] == m.RC_UNSUPPORTED_PROTOCOL_VERSION


@pytest.mark.parametrize("v", VERSIONS)
def test_unsupported_protocol_level_gets_connack_then_close(broker, raw, witness, v):
    c = raw(v)
    c.send(m.connect("proto-level", v=v, proto_level=7))
    got = c.wait_closed(WAIT)
    # 3.1.1 [MQTT-3.1.2-2]: MUST answer 0x01 and disconnect; a 5.0 server
    # may answer with its own 0x84 form instead.
    assert len(got) == 1 and _refusal_connack(got[0]), "got %r" % got
    witness.check()


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.parametrize("name", ["MQTX", "mqtt", "MQIsdp-x"])
def test_bad_protocol_name_closes(broker, raw, witness, v, name):
    c = raw(v)
    c.send(m.connect("proto-name", v=v, proto_name=name))
    got = c.wait_closed(WAIT)
    # [MQTT-3.1.2-1]: the server MAY disconnect at once, or refuse first.
    assert all(_refusal_connack(p) for p in got) and len(got) <= 1, "got %r" % got
    witness.check()


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.parametrize("packet", [
    pytest.param(lambda v: m.connect("proto-rsv", v=v, flags_extra=0x01), id="connect-flag-bit0"),
    pytest.param(lambda v: b"\x11" + m.connect("proto-rsv", v=v)[1:], id="connect-header-flags"),
    # Will QoS 3 (3.1.2-14), will retain without will flag (3.1.2-15).
    pytest.param(lambda v: m.connect("proto-rsv", v=v, flags_extra=0x18), id="will-qos-without-will"),
    pytest.param(lambda v: m.connect("proto-rsv", v=v, will={"topic": "w", "payload": b"x"},
                                     flags_extra=0x18), id="will-qos3"),
    # Password without user name is a violation in 3.1.1 (3.1.2-22) only; a
    # 5.0 server accepts it, so that case is not here.
])
def test_bad_connect_flags_close(broker, raw, witness, v, packet):
    c = raw(v)
    c.send(packet(v))
    got = c.wait_closed(WAIT)
    if v == m.V311:
        assert got == [], "3.1.1: no CONNACK for a malformed CONNECT, got %r" % got
    else:
        # 5.0 4.13.1: a CONNACK with a reason code >= 0x80 may precede the close.
        assert all(p.type == m.CONNACK and p.rc in (m.RC_MALFORMED, m.RC_PROTOCOL_ERROR)
                   for p in got) and len(got) <= 1, "got %r" % got
    witness.check()


def test_v311_empty_client_id_without_clean_session_is_rejected(broker, raw, witness):
    c = raw(m.V311)
    c.send(m.connect("", v=m.V311, clean=False))
    # [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then close.
    assert [p.raw for p in c.wait_closed(WAIT)] == [b"\x20\x02\x00\x02"]
    witness.check()


# ---------------------------------------------------------------------------
# Violations after CONNACK
# ---------------------------------------------------------------------------

MALFORMED = m.RC_MALFORMED
PROTOCOL = m.RC_PROTOCOL_ERROR

MOSQUITTO_IGNORES_FLAGS = pytest.mark.skipif(
    TARGET == "mosquitto",
    reason="Mosquitto 2.0.11 ignores PINGREQ's reserved flags (contrary to [MQTT-2.2.2-2])")


def violation(name, packet, codes, marks=()):
    """A packet that must get its sender disconnected; `codes` are the 5.0
    DISCONNECT reason codes the specification allows for it."""
    return pytest.param(packet, codes, id=name, marks=marks)


VIOLATIONS = [
    violation("remaining-length-5-bytes", lambda v: b"\x30\xff\xff\xff\xff\x7f", (MALFORMED,)),
    violation("publish-qos3", lambda v: b"\x36" + m.publish("proto/q3", b"x", qos=1, v=v)[1:],
              (MALFORMED,)),
    violation("publish-wildcard-plus", lambda v: m.publish("proto/+/x", b"x", v=v),
              (m.RC_TOPIC_NAME_INVALID, PROTOCOL)),
    violation("publish-wildcard-hash-qos1", lambda v: m.publish("proto/#", b"x", qos=1, v=v),
              (m.RC_TOPIC_NAME_INVALID, PROTOCOL)),
    violation("publish-utf8-invalid-byte", lambda v: m.publish(b"proto/\xff", b"x", v=v),
              (MALFORMED,)),
    violation("publish-utf8-overlong", lambda v: m.publish(b"proto/\xc0\xaf", b"x", v=v),
              (MALFORMED,)),
    violation("publish-utf8-surrogate", lambda v: m.publish(b"proto/\xed\xa0\x80", b"x", v=v),
              (MALFORMED,)),
    violation("publish-utf8-nul", lambda v: m.publish(b"proto/\x00", b"x", v=v), (MALFORMED,)),
    violation("publish-packet-id-0", lambda v: m.publish("proto/mid0", b"x", qos=1, mid=0, v=v),
              (MALFORMED, PROTOCOL)),
    violation("subscribe-header-flags", lambda v: b"\x80" + m.subscribe(1, "proto/a", v=v)[1:],
              (MALFORMED,)),
    violation("subscribe-no-filters", lambda v: m.subscribe(1, [], v=v), (MALFORMED, PROTOCOL)),
    violation("subscribe-qos3", lambda v: m.subscribe(1, [("proto/a", 3)], v=v),
              (MALFORMED, PROTOCOL)),
    violation("subscribe-options-reserved-bits",
              lambda v: m.subscribe(1, [("proto/a", 0xC0)], v=v), (MALFORMED, PROTOCOL)),
    violation("subscribe-filter-utf8-invalid",
              lambda v: m.subscribe(1, [(b"proto/\xff", 0)], v=v), (MALFORMED,)),
    violation("pubrel-header-flags", lambda v: b"\x60" + m.pubrel(1, v=v)[1:], (MALFORMED,)),
    violation("unsubscribe-header-flags",
              lambda v: b"\xa0" + m.unsubscribe(1, "proto/a", v=v)[1:], (MALFORMED,)),
    violation("pingreq-header-flags", lambda v: b"\xc1\x00", (MALFORMED,),
              marks=MOSQUITTO_IGNORES_FLAGS),
    violation("reserved-packet-type-0", lambda v: b"\x00\x00", (MALFORMED, PROTOCOL)),
    violation("connack-from-client", lambda v: m.connack(v=v), (MALFORMED, PROTOCOL)),
]


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.parametrize("packet,codes", VIOLATIONS)
def test_violation_closes_only_that_connection(broker, raw, witness, v, packet, codes):
    c = raw(v)
    c.connect("proto-violator")
    c.send(packet(v))
    expect_protocol_error(broker, c, codes)
    witness.check()
    # The broker still accepts new connections, under the same client id too.
    again = raw(v)
    again.connect("proto-violator")
    again.ping()


@pytest.mark.parametrize("v", VERSIONS)
def test_truncated_packet_then_close_is_harmless(broker, raw, witness, v):
    sub = raw(v)
    sub.connect("proto-trunc-sub")
    assert sub.subscribe(1, [("proto/trunc", 1)]) == [1]
    c = raw(v)
    c.connect("proto-trunc")
    whole = m.publish("proto/trunc", b"P" * 100, qos=1, mid=5, v=v)
    c.send(whole[:20])  # the header promises more than ever comes
    c.close()
    witness.check()
    pub = raw(v)
    pub.connect("proto-trunc-pub")
    pub.publish("proto/trunc", b"after", qos=1)
    p = sub.recv_publish()
    assert (p.topic, p.payload) == ("proto/trunc", b"after"), "a truncated PUBLISH was delivered"


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.broker(config={"mqtt.max_packet_size": "1024"})
def test_oversize_packet(broker, raw, witness, v):
    c = raw(v)
    ack = c.connect("proto-big")
    if v == m.V5:
        # 3.2.2.3.6: a server that limits packet size says so.
        assert ack.props.get("maximum_packet_size") == 1024, ack.props
    # Under the limit: accepted.
    assert c.publish("proto/big", b"s" * 900, qos=1) is not None
    c.send(m.publish("proto/big", b"B" * 4000, qos=1, mid=2, v=v))
    expect_protocol_error(broker, c, m.RC_PACKET_TOO_LARGE)
    witness.check()


# ---------------------------------------------------------------------------
# Keep alive
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", VERSIONS)
def test_keepalive_enforced(broker, raw, witness, v):
    c = raw(v)
    c.connect("proto-keepalive", keepalive=1)
    t0 = time.monotonic()
    # [MQTT-3.1.2-24]: closed after 1.5 x keep alive without a packet; 5 s
    # leaves room for a loaded machine. Mosquitto 2.0.11 checks keep alives
    # only every few seconds (about 6 s here), so it gets more.
    deadline = 5.0 if broker.is_weir else 12.0
    try:
        got = c.wait_closed(deadline)
    except m.Timeout:
        pytest.fail("connection with keep alive 1 s still open after %.0f s of silence" % deadline)
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.0, "closed after %.2fs, before the keep alive ran out" % elapsed
    if v == m.V5:
        assert all(p.type == m.DISCONNECT and p.rc == m.RC_KEEP_ALIVE_TIMEOUT for p in got), got
    else:
        assert got == []
    witness.check()


@pytest.mark.parametrize("v", VERSIONS)
def test_keepalive_kept_by_pings(broker, raw, v):
    c = raw(v)
    c.connect("proto-keepalive-ok", keepalive=1)
    end = time.monotonic() + 2.5  # well past 1.5 x keep alive
    while time.monotonic() < end:
        c.ping()
        let_time_pass(0.4)  # the client's own ping period
    c.ping()


@pytest.mark.parametrize("v", VERSIONS)
def test_pingreq_pingresp(broker, raw, v):
    c = raw(v)
    c.connect("proto-ping")
    for _ in range(3):
        c.send(m.pingreq())
        c.expect_bytes(b"\xd0\x00")


# ---------------------------------------------------------------------------
# QoS flows
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", VERSIONS)
def test_qos2_handshake_exactly_once(broker, raw, v):
    sub = raw(v)
    sub.connect("proto-q2-sub")
    assert sub.subscribe(1, [("proto/q2", 2)]) == [2]
    pub = raw(v)
    pub.connect("proto-q2-pub")

    mid = 0x1234
    pub.send(m.publish("proto/q2", b"exactly once", qos=2, mid=mid, v=v))
    check_ack(pub.read(), m.PUBREC, mid, v)
    # A resend with DUP before PUBREL is acknowledged again, not delivered again.
    pub.send(m.publish("proto/q2", b"exactly once", qos=2, mid=mid, dup=True, v=v))
    check_ack(pub.read(), m.PUBREC, mid, v)
    pub.send(m.pubrel(mid, v=v))
    check_ack(pub.read(), m.PUBCOMP, mid, v)

    p = sub.read()
    assert p.type == m.PUBLISH
    assert p.raw == m.publish("proto/q2", b"exactly once", qos=2, mid=p.mid, v=v), p
    sub.send(m.pubrec(p.mid, v=v))
    check_ack(sub.read(), m.PUBREL, p.mid, v)
    sub.send(m.pubcomp(p.mid, v=v))

    pub.publish("proto/q2", b"next", qos=2, mid=mid + 1)
    nxt = sub.recv_publish()
    assert nxt.payload == b"next", "the QoS 2 message was delivered twice: %r" % nxt


@pytest.mark.parametrize("v", VERSIONS)
def test_pubrel_for_unknown_packet_id(broker, raw, witness, v):
    c = raw(v)
    c.connect("proto-pubrel")
    c.send(m.pubrel(77, v=v))
    p = c.expect(m.PUBCOMP)
    # 3.1.1 4.3.3: PUBCOMP with the same id; 5.0 may add 0x92 (not found).
    assert p.mid == 77 and p.rc in (0, m.RC_PACKET_ID_NOT_FOUND), p
    c.ping()
    witness.check()


def _persistent(c, v, cid):
    """Connects with a session that outlives the connection (3.1.1: clean
    session 0; 5.0: clean start 0 and a session expiry)."""
    props = {"session_expiry": 300} if v == m.V5 else None
    return c.connect(cid, clean=False, properties=props)


@pytest.mark.parametrize("v", VERSIONS)
def test_unacked_qos1_redelivered_with_dup(broker, raw, v):
    cid = "proto-redeliver"
    sub = raw(v)
    first = _persistent(sub, v, cid)
    assert not first.session_present
    assert sub.subscribe(1, [("proto/redeliver", 1)]) == [1]
    pub = raw(v)
    pub.connect("proto-redeliver-pub")
    pub.publish("proto/redeliver", b"unacked", qos=1)

    p = sub.recv_publish(ack=False)
    assert (p.topic, p.payload, p.qos, p.dup) == ("proto/redeliver", b"unacked", 1, False)
    sub.abort()

    again = raw(v)
    ack = _persistent(again, v, cid)
    assert ack.session_present
    # [MQTT-4.4.0-1]: resent with the original packet identifier and DUP set.
    again.expect_bytes(m.publish("proto/redeliver", b"unacked", qos=1, dup=True, mid=p.mid, v=v))
    again.send(m.puback(p.mid, v=v))
    pub.publish("proto/redeliver", b"fresh", qos=1, mid=2)
    q = again.recv_publish()
    assert (q.payload, q.dup) == (b"fresh", False)


@pytest.mark.parametrize("v", VERSIONS)
def test_unanswered_pubrel_resent_after_reconnect(broker, raw, v):
    cid = "proto-pubrel-resend"
    sub = raw(v)
    assert not _persistent(sub, v, cid).session_present
    assert sub.subscribe(1, [("proto/rel", 2)]) == [2]
    pub = raw(v)
    pub.connect("proto-rel-pub")
    pub.publish("proto/rel", b"q2", qos=2)

    p = sub.recv_publish(ack=False)
    assert p.qos == 2
    sub.send(m.pubrec(p.mid, v=v))
    check_ack(sub.read(), m.PUBREL, p.mid, v)
    sub.abort()  # without PUBCOMP

    again = raw(v)
    assert _persistent(again, v, cid).session_present
    # The PUBLISH is not resent (it was received); the PUBREL is.
    check_ack(again.read(), m.PUBREL, p.mid, v)
    again.send(m.pubcomp(p.mid, v=v))
    pub.publish("proto/rel", b"after", qos=2, mid=9)
    assert again.recv_publish().payload == b"after"


# ---------------------------------------------------------------------------
# Deny list (weir's mqtt.deny; emulated for Mosquitto with an ACL file)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.broker(config={"mqtt.deny": "secret/#"})
@pytest.mark.skipif(TARGET == "mosquitto", reason="Mosquitto's acl_file does not refuse "
                    "SUBSCRIBE (it filters at delivery); weir's deny list refuses the filter")
def test_deny_list_subscribe(broker, raw, witness, v):
    c = raw(v)
    c.connect("proto-deny-sub")
    codes = c.subscribe(1, [("secret/plans", 1), ("public/news", 1), ("secret/#", 0)])
    refused = m.RC_NOT_AUTHORIZED if v == m.V5 else 0x80
    assert codes == [refused, 1, refused]
    # The granted one works; the connection is still fine.
    pub = raw(v)
    pub.connect("proto-deny-pub")
    pub.publish("public/news", b"ok", qos=1)
    assert c.recv_publish().payload == b"ok"
    witness.check()


@pytest.mark.parametrize("v", VERSIONS)
@pytest.mark.broker(config={"mqtt.deny": "secret/#"})
def test_deny_list_publish(broker, raw, witness, v):
    obs = raw(v)
    obs.connect("proto-deny-observer")
    # A wildcard that overlaps the denied filter may be refused or granted;
    # if granted, denied topics must not come through it.
    granted = obs.subscribe(1, [("#", 1)])[0] < 0x80
    c = raw(v)
    c.connect("proto-deny-pub")
    for i, topic in enumerate(["secret/plans", "secret"]):
        c.send(m.publish(topic, b"leak", qos=1, mid=10 + i, v=v))
        if v == m.V5:
            p = c.expect(m.PUBACK)
            assert (p.mid, p.rc) == (10 + i, m.RC_NOT_AUTHORIZED), p
        else:
            # [MQTT-3.3.5-2]: positive ack or close; weir acks.
            p = c.expect(m.PUBACK)
            assert p.raw == m.puback(10 + i)
    c.publish("public/marker", b"marker", qos=1, mid=20)
    if granted:
        p = obs.recv_publish()
        assert (p.topic, p.payload) == ("public/marker", b"marker"), \
            "a denied publish was delivered: %r" % p
    witness.check()
