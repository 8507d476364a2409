"""MQTT 5.0 features, driven by paho-mqtt (1.6, MQTTv5) where a stock client
can express them and by raw packets where it cannot (invalid aliases,
flow control, session takeover)."""

import time

import pytest

import mqttraw as m
from conftest import (TARGET, WAIT, expect_protocol_error, let_time_pass, wait_for,
                      weir_only)


def mosquitto_deviates(reason):
    return pytest.mark.skipif(TARGET == "mosquitto", reason="Mosquitto 2.0.11 " + reason)


def sub_ids(msg):
    return sorted(msg.prop("SubscriptionIdentifier", []) or [])


# ---------------------------------------------------------------------------
# CONNECT / CONNACK
# ---------------------------------------------------------------------------


@pytest.mark.broker(config={"mqtt.receive_maximum": "10", "mqtt.topic_alias_maximum": "5",
                            "mqtt.max_keepalive": "30"})
def test_connack_properties_follow_config(broker, client):
    c = client("v5-connack", keepalive=60)
    flags, rc, props = c.connack
    assert props.ReceiveMaximum == 10
    assert props.TopicAliasMaximum == 5
    # Asked for 60 s, allowed 30: told so in Server Keep Alive (3.2.2.3.14).
    assert props.ServerKeepAlive == 30
    # Absent means "available" / QoS 2; when present they must say so.
    assert getattr(props, "RetainAvailable", 1) == 1
    assert getattr(props, "MaximumQoS", 2) == 2
    assert getattr(props, "WildcardSubscriptionAvailable", 1) == 1
    assert getattr(props, "SubscriptionIdentifierAvailable", 1) == 1
    assert getattr(props, "SharedSubscriptionAvailable", 1) == 1
    assert flags["session present"] == 0


@weir_only("documented defaults of mqtt.receive_maximum and mqtt.topic_alias_maximum")
def test_connack_properties_defaults(broker, raw):
    c = raw(m.V5)
    ack = c.connect("v5-defaults", keepalive=60)
    assert ack.props.get("receive_maximum") == 256
    assert ack.props.get("topic_alias_maximum") == 64
    assert "server_keep_alive" not in ack.props
    assert "assigned_client_id" not in ack.props


def test_assigned_client_identifier(broker, client):
    a = client("")
    b = client("")
    ida = a.connack[2].AssignedClientIdentifier
    idb = b.connack[2].AssignedClientIdentifier
    assert ida and idb and ida != idb
    # The assigned identifier is a real one: it names a session like any other.
    a.disconnect()
    again = client(ida)
    assert again.subscribe("v5/assigned", 1) == [1]


@pytest.mark.parametrize("case", ["kept", "expired", "zero", "zeroed-at-disconnect"])
def test_session_expiry(broker, client, case):
    expiry = {"kept": 60, "expired": 1, "zero": 0, "zeroed-at-disconnect": 60}[case]
    cid = "v5-expiry-" + case
    c = client(cid, session_expiry=expiry)
    assert c.subscribe("v5/expiry/" + case, 1) == [1]
    if case == "zeroed-at-disconnect":
        # 3.14.2.2.2: the client may shorten (not lengthen from 0) the expiry.
        c.disconnect(SessionExpiryInterval=0)
    else:
        c.disconnect()
    p = client("v5-expiry-pub")
    p.publish("v5/expiry/" + case, b"while away", qos=1)
    if case == "expired":
        let_time_pass(2.5)

    back = client(cid, clean=False, session_expiry=60)
    present = back.connack[0]["session present"]
    if case == "kept":
        assert present == 1
        msg = back.get()
        assert (msg.topic, msg.payload, msg.qos) == ("v5/expiry/kept", b"while away", 1)
    else:
        assert present == 0, "session should have ended (%s)" % case
        # No session, so no subscription: a marker on a fresh subscription
        # arrives and nothing queued comes before it.
        assert back.subscribe("v5/expiry/marker", 1) == [1]
        p.publish("v5/expiry/marker", b"marker", qos=1)
        assert [x.payload for x in back.until(lambda x: x.payload == b"marker")] == [b"marker"]


# ---------------------------------------------------------------------------
# PUBLISH properties
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_properties_passed_through(broker, client, qos):
    sub = client("v5-props-sub")
    assert sub.subscribe("v5/props", 2) == [2]
    old = client("v5-props-sub311", v=4)
    assert old.subscribe("v5/props", 2) == [2]
    pub = client("v5-props-pub")
    user = [("a", "1"), ("a", "2"), ("b", "ü three")]
    pub.publish("v5/props", b'{"t": 21.5}', qos=qos,
                UserProperty=user, ContentType="application/json",
                ResponseTopic="v5/props/reply", CorrelationData=b"\x00\x01corr\xff",
                PayloadFormatIndicator=1)
    msg = sub.get()
    assert (msg.topic, msg.payload, msg.qos) == ("v5/props", b'{"t": 21.5}', qos)
    # Order and repetition of user properties are kept ([MQTT-3.3.2-18]).
    assert msg.prop("UserProperty") == user
    assert msg.prop("ContentType") == "application/json"
    assert msg.prop("ResponseTopic") == "v5/props/reply"
    assert msg.prop("CorrelationData") == b"\x00\x01corr\xff"
    assert msg.prop("PayloadFormatIndicator") == 1
    assert msg.prop("MessageExpiryInterval") is None
    # A 3.1.1 subscriber gets the same message without properties.
    m311 = old.get()
    assert (m311.topic, m311.payload, m311.qos) == ("v5/props", b'{"t": 21.5}', qos)


def test_message_expiry(broker, client):
    cid = "v5-expiry-msg"
    off = client(cid, session_expiry=300)
    assert off.subscribe("v5/mexp/q", 1) == [1]
    off.disconnect()
    pub = client("v5-mexp-pub")
    pub.publish("v5/mexp/q", b"short", qos=1, MessageExpiryInterval=1)
    pub.publish("v5/mexp/q", b"long", qos=1, MessageExpiryInterval=60)
    pub.publish("v5/mexp/q", b"forever", qos=1)
    pub.publish("v5/mexp/r/short", b"retained short", qos=1, retain=True, MessageExpiryInterval=1)
    pub.publish("v5/mexp/r/long", b"retained long", qos=1, retain=True, MessageExpiryInterval=60)
    published = time.monotonic()
    let_time_pass(2.2)

    back = client(cid, clean=False, session_expiry=300)
    assert back.connack[0]["session present"] == 1
    got = back.until(lambda x: x.payload == b"forever")
    # The expired message is gone; the other one comes with its remaining
    # lifetime ([MQTT-3.3.2-6]: received value minus time waited).
    assert [x.payload for x in got] == [b"long", b"forever"]
    waited = time.monotonic() - published
    remaining = got[0].prop("MessageExpiryInterval")
    assert remaining is not None and 1 <= remaining <= 60 - int(waited) + 1, remaining
    assert remaining <= 59, "expiry not decremented: %s" % remaining
    assert got[1].prop("MessageExpiryInterval") is None

    # Retained messages expire too.
    fresh = client("v5-mexp-fresh")
    assert fresh.subscribe("v5/mexp/r/#", 1) == [1]
    kept = fresh.get()
    assert (kept.topic, kept.retain) == ("v5/mexp/r/long", True)
    assert kept.prop("MessageExpiryInterval") <= 59
    pub.publish("v5/mexp/r/marker", b"marker", qos=1)
    got = fresh.until(lambda x: x.payload == b"marker")
    assert [x.topic for x in got] == ["v5/mexp/r/marker"], "expired retained message sent"


def test_message_expiry_on_live_delivery(broker, client):
    sub = client("v5-mexp-live")
    assert sub.subscribe("v5/mexp/live", 1) == [1]
    pub = client("v5-mexp-live-pub")
    pub.publish("v5/mexp/live", b"x", qos=1, MessageExpiryInterval=30)
    msg = sub.get()
    assert msg.payload == b"x"
    assert 28 <= msg.prop("MessageExpiryInterval") <= 30


# ---------------------------------------------------------------------------
# Topic aliases (client to server)
# ---------------------------------------------------------------------------


def test_topic_alias_client_to_server(broker, client):
    sub = client("v5-alias-sub")
    assert sub.subscribe("v5/alias/#", 1) == [1]
    pub = client("v5-alias-pub")
    assert pub.connack[2].TopicAliasMaximum >= 1
    pub.publish("v5/alias/first", b"1", qos=1, TopicAlias=1)   # set alias 1
    pub.publish("", b"2", qos=1, TopicAlias=1)                 # use it
    pub.publish("v5/alias/second", b"3", qos=1, TopicAlias=1)  # remap it
    pub.publish("", b"4", qos=0, TopicAlias=1)
    pub.publish("v5/alias/first", b"5", qos=1)                 # plain name still fine
    got = sub.get_n(5)
    assert [(x.topic, x.payload) for x in got] == [
        ("v5/alias/first", b"1"), ("v5/alias/first", b"2"), ("v5/alias/second", b"3"),
        ("v5/alias/second", b"4"), ("v5/alias/first", b"5")]
    # The subscriber allowed no aliases (Topic Alias Maximum absent = 0).
    assert all(x.prop("TopicAlias") is None for x in got)


@pytest.mark.broker(config={"mqtt.topic_alias_maximum": "5"})
@pytest.mark.parametrize("topic,alias,codes", [
    pytest.param("v5/alias", 0, (m.RC_TOPIC_ALIAS_INVALID, m.RC_MALFORMED, m.RC_PROTOCOL_ERROR),
                 id="alias-0"),
    pytest.param("v5/alias", 6, (m.RC_TOPIC_ALIAS_INVALID,), id="alias-over-maximum"),
    pytest.param("", 3, (m.RC_PROTOCOL_ERROR,), id="alias-never-set"),
    pytest.param("", None, (m.RC_PROTOCOL_ERROR, m.RC_TOPIC_NAME_INVALID), id="empty-topic-no-alias"),
])
def test_topic_alias_violations(broker, raw, witness, topic, alias, codes):
    c = raw(m.V5)
    c.connect("v5-alias-bad")
    c.send(m.publish(topic, b"x", v=m.V5,
                     properties={"topic_alias": alias} if alias is not None else None))
    expect_protocol_error(broker, c, codes)
    witness.check()


# ---------------------------------------------------------------------------
# Subscription options and identifiers
# ---------------------------------------------------------------------------


def test_subscription_identifiers(broker, client):
    sub = client("v5-sid")
    assert sub.subscribe("v5/sid/a/#", 1, sub_id=7) == [1]
    assert sub.subscribe("v5/sid/+/b", 1, sub_id=300000) == [1]  # 3-byte varint
    assert sub.subscribe("v5/sid/none", 1) == [1]
    pub = client("v5-sid-pub")

    pub.publish("v5/sid/a/c", b"one", qos=1)
    msg = sub.get()
    assert (msg.topic, sub_ids(msg)) == ("v5/sid/a/c", [7])

    pub.publish("v5/sid/x/b", b"two", qos=1)
    msg = sub.get()
    assert (msg.topic, sub_ids(msg)) == ("v5/sid/x/b", [300000])

    pub.publish("v5/sid/none", b"three", qos=1)
    msg = sub.get()
    assert (msg.payload, sub_ids(msg)) == (b"three", [])

    # Both match: one message carrying both ids, or one per subscription
    # each with its own id (3.3.4).
    pub.publish("v5/sid/a/b", b"both", qos=1)
    pub.publish("v5/sid/none", b"marker", qos=1)
    got = sub.until(lambda x: x.payload == b"marker")[:-1]
    ids = sorted(i for x in got for i in sub_ids(x))
    assert all(x.payload == b"both" for x in got) and ids == [7, 300000], got
    assert len(got) in (1, 2)


def test_subscription_identifier_update_replaces(broker, client):
    sub = client("v5-sid-update")
    assert sub.subscribe("v5/sidu", 1, sub_id=5) == [1]
    assert sub.subscribe("v5/sidu", 1, sub_id=6) == [1]  # same filter: replaced
    pub = client("v5-sidu-pub")
    pub.publish("v5/sidu", b"x", qos=1)
    pub.publish("v5/sidu", b"marker", qos=1)
    got = sub.until(lambda x: x.payload == b"marker")
    assert [(x.payload, sub_ids(x)) for x in got] == [(b"x", [6]), (b"marker", [6])]


def test_no_local(broker, client):
    me = client("v5-nolocal")
    assert me.subscribe("v5/nolocal", 1, noLocal=True) == [1]
    other = client("v5-nolocal-other")
    me.publish("v5/nolocal", b"mine", qos=1)
    other.publish("v5/nolocal", b"theirs", qos=1)
    got = me.until(lambda x: x.payload == b"theirs")
    assert [x.payload for x in got] == [b"theirs"], "own message delivered despite No Local"


def test_retain_as_published(broker, client):
    rap = client("v5-rap")
    assert rap.subscribe("v5/rap", 1, retainAsPublished=True) == [1]
    plain = client("v5-rap-plain")
    assert plain.subscribe("v5/rap", 1) == [1]
    pub = client("v5-rap-pub")
    pub.publish("v5/rap", b"retained live", qos=1, retain=True)
    pub.publish("v5/rap", b"not retained", qos=1)
    assert [(x.payload, x.retain) for x in rap.get_n(2)] == [
        (b"retained live", True), (b"not retained", False)]
    assert [(x.payload, x.retain) for x in plain.get_n(2)] == [
        (b"retained live", False), (b"not retained", False)]
    # Sent because of a new subscription: retain is 1 either way.
    late = client("v5-rap-late")
    assert late.subscribe("v5/rap", 1) == [1]
    msg = late.get()
    assert (msg.payload, msg.retain) == (b"retained live", True)
    pub.publish("v5/rap", b"", qos=1, retain=True)  # clean up


def test_retain_handling(broker, client):
    pub = client("v5-rh-pub")
    pub.publish("v5/rh/t", b"kept", qos=1, retain=True)
    c = client("v5-rh")

    def subscribe(rh, gets_retained, filt="v5/rh/t"):
        assert c.subscribe(filt, 1, retainHandling=rh) == [1]
        if gets_retained:
            msg = c.get()
            assert (msg.payload, msg.retain) == (b"kept", True)
        # Then nothing (else) retained: the next message is a live marker.
        pub.publish("v5/rh/t", b"marker", qos=1)
        got = c.until(lambda x: x.payload == b"marker")
        assert [x.payload for x in got] == [b"marker"], \
            "retain handling %d: unexpected %r" % (rh, got)

    # 1: only when the subscription is new.
    subscribe(1, True)
    subscribe(1, False)
    # 0: every time.
    subscribe(0, True)
    subscribe(0, True)
    # 2: never, not even for a new subscription.
    subscribe(2, False, "v5/rh/+")
    # The same for a client with no subscription at all yet.
    other = client("v5-rh-2")
    assert other.subscribe("v5/rh/#", 1, retainHandling=2) == [1]
    pub.publish("v5/rh/t", b"marker2", qos=1)
    assert [x.payload for x in other.until(lambda x: x.payload == b"marker2")] == [b"marker2"]


# ---------------------------------------------------------------------------
# Shared and overlapping subscriptions
# ---------------------------------------------------------------------------


def test_shared_subscription_round_robin(broker, client):
    n = 30
    g1 = [client("v5-share-g1-%d" % i) for i in range(3)]
    g2 = [client("v5-share-g2-%d" % i) for i in range(2)]
    for c in g1:
        assert c.subscribe("$share/g1/v5/shared/+", 1) == [1]
    for c in g2:
        assert c.subscribe("$share/g2/v5/shared/+", 1) == [1]
    plain = client("v5-share-plain")
    assert plain.subscribe("v5/shared/+", 1) == [1]
    pub = client("v5-share-pub")
    for i in range(n):
        pub.publish("v5/shared/t", b"%d" % i, qos=1)
    pub.publish("v5/shared/end", b"end", qos=1)

    # The plain subscriber sees everything once, in order.
    assert [x.payload for x in plain.get_n(n + 1)] == [b"%d" % i for i in range(n)] + [b"end"]

    for group in (g1, g2):
        got = {id(c): [] for c in group}

        def total():
            for c in group:
                got[id(c)] += [x.payload for x in c.pending()]
            return sum(len(v) for v in got.values())

        wait_for(lambda: total() >= n + 1, what="%d messages across the group" % (n + 1))
        total()  # late duplicates, if any
        everything = sorted(p for v in got.values() for p in v)
        # Each message to exactly one member of each group.
        assert everything == sorted([b"%d" % i for i in range(n)] + [b"end"]), got
        counts = [len(v) for v in got.values()]
        # Round robin: roughly balanced, nobody starved.
        assert min(counts) >= (n + 1) // (2 * len(group)), counts


@pytest.mark.parametrize("v,higher", [
    pytest.param(4, "exact", id="v311-exact-filter-higher"),
    pytest.param(4, "wildcard", id="v311-wildcard-filter-higher", marks=mosquitto_deviates(
        "delivers a single copy to a 3.1.1 client at the exact filter's QoS 1, not at "
        "the highest matching QoS 2 ([MQTT-3.3.5-1])")),
    pytest.param(5, "exact", id="v5-exact-filter-higher"),
    pytest.param(5, "wildcard", id="v5-wildcard-filter-higher"),
])
def test_overlapping_subscriptions(broker, raw, v, higher):
    # Raw packets, to see the broker's order on the wire (paho hands QoS 2
    # messages over only at PUBREL, so a later QoS 1 one can overtake them).
    sub = raw(v)
    sub.connect("v5-overlap")
    q_wild, q_exact = (1, 2) if higher == "exact" else (2, 1)
    props = (lambda i: {"subscription_id": i}) if v == 5 else (lambda i: None)
    assert sub.subscribe(1, [("v5/ov/#", q_wild)], properties=props(1)) == [q_wild]
    assert sub.subscribe(2, [("v5/ov/a", q_exact)], properties=props(2)) == [q_exact]
    pub = raw(v)
    pub.connect("v5-overlap-pub")
    pub.publish("v5/ov/a", b"both", qos=2, mid=1)
    pub.publish("v5/ov/z", b"marker", qos=2, mid=2)  # matches v5/ov/# only
    got = []
    while not got or got[-1].payload != b"marker":
        got.append(sub.recv_publish())
    assert got[-1].qos == q_wild
    both = got[:-1]
    assert all(x.payload == b"both" for x in both), got
    # At least one copy, at the highest QoS of the matching subscriptions
    # ([MQTT-3.3.5-1], [MQTT-3.3.4-2]); 5.0 allows one copy per subscription.
    assert 1 <= len(both) <= 2
    assert max(x.qos for x in both) == 2
    if v == 5:
        ids = sorted(i for x in both for i in x.props.get("subscription_id", []))
        assert ids == [1, 2]
        if len(both) == 2:
            assert sorted((x.qos, x.props["subscription_id"]) for x in both) == sorted(
                [(q_wild, [1]), (q_exact, [2])])


# ---------------------------------------------------------------------------
# Reason codes
# ---------------------------------------------------------------------------


def test_reason_codes_on_acks(broker, raw):
    c = raw(m.V5)
    c.connect("v5-rc")
    p = c.publish("v5/rc/nobody", b"x", qos=1, mid=1)
    assert p.rc in (m.RC_SUCCESS, m.RC_NO_MATCHING_SUBSCRIBERS)  # 0x10 is a MAY
    c.send(m.publish("v5/rc/nobody", b"x", qos=2, mid=2, v=m.V5))
    p = c.expect(m.PUBREC)
    assert (p.mid, p.rc) in ((2, m.RC_SUCCESS), (2, m.RC_NO_MATCHING_SUBSCRIBERS))
    c.send(m.pubrel(2, v=m.V5))
    p = c.expect(m.PUBCOMP)
    assert (p.mid, p.rc) == (2, 0)

    assert c.subscribe(3, [("v5/rc/0", 0), ("v5/rc/1", 1), ("v5/rc/2", 2)]) == [0, 1, 2]
    p = c.publish("v5/rc/1", b"y", qos=1, mid=4)
    assert (p.mid, p.rc) == (4, m.RC_SUCCESS)
    got = c.recv_publish()
    assert (got.topic, got.payload) == ("v5/rc/1", b"y")

    c.send(m.unsubscribe(5, ["v5/rc/0", "v5/rc/none"], v=m.V5))
    p = c.expect(m.UNSUBACK)
    assert p.mid == 5 and p.codes[0] == m.RC_SUCCESS
    assert p.codes[1] in (m.RC_SUCCESS, m.RC_NO_SUBSCRIPTION_EXISTED)
    assert len(p.codes) == 2


INVALID_FILTERS = ["v5/#/x", "v5/x#", "v5/x+/y", "#/x", "$share/g+/x"]
# Valid 3.1.1 filters (no shared subscriptions there), invalid 5.0 ones.
INVALID_SHARES = ["$share/g", "$share//x"]
MOSQUITTO_SHARES = mosquitto_deviates("accepts a shared subscription without a filter or with "
                                      "an empty share name ([MQTT-4.8.2-1], [MQTT-4.8.2-2])")


@pytest.mark.parametrize("v,bad", [pytest.param(v, f, id="%s-v%d" % (f, v))
                                   for f in INVALID_FILTERS for v in (4, 5)]
                         + [pytest.param(5, f, id="%s-v5" % f, marks=MOSQUITTO_SHARES)
                            for f in INVALID_SHARES])
def test_invalid_topic_filter_refused(broker, raw, witness, v, bad):
    c = raw(v)
    c.connect("v5-badfilter")
    c.send(m.subscribe(1, [("v5/good", 1), (bad, 1)], v=v))
    # Either refused in SUBACK (0x8F Topic Filter invalid; 0x80 in 3.1.1)
    # while the good filter is granted, or the whole packet treated as
    # malformed and the connection closed (4.13). Never granted.
    try:
        p = c.read(WAIT)
    except m.Closed:
        p = None
    if p is not None and p.type == m.SUBACK:
        refused = m.RC_TOPIC_FILTER_INVALID if v == 5 else 0x80
        assert p.codes == [1, refused], p
        c.ping()
    else:
        assert p is None or (v == 5 and p.type == m.DISCONNECT and p.rc in (
            m.RC_MALFORMED, m.RC_PROTOCOL_ERROR, m.RC_TOPIC_FILTER_INVALID)), p
        if p is not None:
            c.wait_closed(WAIT)
    witness.check()


# ---------------------------------------------------------------------------
# Flow control and limits
# ---------------------------------------------------------------------------


@mosquitto_deviates("sends past the client's Receive Maximum once the first ack arrives "
                    "(3 unacknowledged with a maximum of 2)")
def test_server_respects_client_receive_maximum(broker, raw):
    sub = raw(m.V5)
    sub.connect("v5-rm", properties={"receive_maximum": 2})
    assert sub.subscribe(1, [("v5/rm", 1)]) == [1]
    pub = raw(m.V5)
    pub.connect("v5-rm-pub")
    for i in range(5):
        pub.publish("v5/rm", b"%d" % i, qos=1, mid=i + 1)  # each PUBACKed: routed

    received, inflight = [], []

    def take(n):
        for _ in range(n):
            p = sub.expect(m.PUBLISH)
            received.append(p)
            inflight.append(p)

    def nothing_more():
        """With Receive Maximum unacknowledged messages out, a PINGREQ must
        be answered before any further PUBLISH."""
        sub.send(m.pingreq())
        p = sub.read(WAIT)
        assert p.type == m.PINGRESP, "[MQTT-3.3.4-9] exceeded: %r with %d in flight" % (
            p, len(inflight))

    take(2)
    nothing_more()
    while len(received) < 5:
        sub.send(m.puback(inflight.pop(0).mid, v=m.V5))
        take(1)
        if len(received) < 5:
            nothing_more()
    assert [p.payload for p in received] == [b"%d" % i for i in range(5)]


@pytest.mark.broker(config={"mqtt.receive_maximum": "3"})
@mosquitto_deviates("answers a PUBLISH over its Receive Maximum with PUBREC 0x97 instead of "
                    "DISCONNECT 0x93 (3.3.4)")
def test_client_exceeding_receive_maximum(broker, raw, witness):
    c = raw(m.V5)
    assert c.connect("v5-rm-over").props.get("receive_maximum") == 3
    for mid in range(1, 4):
        c.send(m.publish("v5/rm/over", b"x", qos=2, mid=mid, v=m.V5))
        assert c.expect(m.PUBREC).mid == mid  # and no PUBREL: all three in flight
    c.send(m.publish("v5/rm/over", b"x", qos=2, mid=4, v=m.V5))
    expect_protocol_error(broker, c, m.RC_RECEIVE_MAXIMUM_EXCEEDED)
    witness.check()


def test_client_maximum_packet_size(broker, raw):
    c = raw(m.V5)
    c.connect("v5-maxpkt", properties={"maximum_packet_size": 200})
    assert c.subscribe(1, [("v5/maxpkt", 1)]) == [1]
    pub = raw(m.V5)
    pub.connect("v5-maxpkt-pub")
    pub.publish("v5/maxpkt", b"L" * 500, qos=1, mid=1)
    pub.publish("v5/maxpkt", b"small", qos=1, mid=2)
    # [MQTT-3.1.2-24]: too big for the client, so discarded, not sent.
    p = c.recv_publish()
    assert p.payload == b"small", "a packet over the client's Maximum Packet Size was sent"


# ---------------------------------------------------------------------------
# Wills and session takeover
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["delayed", "cancelled-by-reconnect", "session-ends-first"])
def test_will_delay_interval(broker, raw, client, case):
    watcher = client("v5-willd-watch")
    assert watcher.subscribe("v5/willd/#", 1) == [1]
    delay, expiry = {"delayed": (2, 60), "cancelled-by-reconnect": (2, 60),
                     "session-ends-first": (30, 1)}[case]
    cid = "v5-willd-" + case
    c = raw(m.V5)
    c.connect(cid, properties={"session_expiry": expiry},
              will={"topic": "v5/willd/status", "payload": b"gone", "qos": 1,
                    "properties": {"will_delay": delay}})
    dropped = time.monotonic()
    c.abort()  # no DISCONNECT: the will is due

    if case == "cancelled-by-reconnect":
        again = raw(m.V5)
        assert again.connect(cid, clean=False, properties={"session_expiry": 60}).session_present
        let_time_pass(delay + 1.0)
        p = client("v5-willd-pub")
        p.publish("v5/willd/marker", b"marker", qos=1)
        got = watcher.until(lambda x: x.payload == b"marker")
        assert [x.payload for x in got] == [b"marker"], "will sent despite the reconnect"
        return

    msg = watcher.get(timeout=max(delay, expiry) + WAIT)
    waited = msg.t - dropped
    assert (msg.topic, msg.payload) == ("v5/willd/status", b"gone")
    due = min(delay, expiry)
    # Never early; late only by the broker's timer granularity.
    assert waited >= due - 0.25, "will sent after %.2fs, due after %ds" % (waited, due)


@pytest.mark.parametrize("v", [4, 5])
def test_session_takeover(broker, raw, witness, v):
    old = raw(v)
    old.connect("v5-takeover")
    assert old.subscribe(1, [("v5/takeover", 1)]) == [1]
    new = raw(v)
    new.connect("v5-takeover")
    got = old.wait_closed(WAIT)
    if v == 5:
        # [MQTT-3.1.4-3]: DISCONNECT 0x8E to the existing connection.
        assert all(p.type == m.DISCONNECT and p.rc == m.RC_SESSION_TAKEN_OVER for p in got), got
        if broker.strict_disconnect:
            assert len(got) == 1, "no DISCONNECT 0x8E before the close: %r" % got
    else:
        assert got == []
    new.ping()
    witness.check()
