"""The broker driven by the stock command-line clients, mosquitto_pub and
mosquitto_sub, in both protocol versions: delivery at each QoS, retained
messages, wills, and persistent sessions that queue messages while their
client is away."""

import signal

import pytest

from conftest import MosquittoSub, mosquitto_pub, run

VERSIONS = ["mqttv311", "mqttv5"]


@pytest.mark.parametrize("version", VERSIONS)
def test_qos_delivery_and_downgrade(broker, procs, version):
    full = MosquittoSub(procs, broker, "cli/qos/+", qos=2, version=version).wait_subscribed()
    low = MosquittoSub(procs, broker, "cli/qos/+", qos=0, version=version).wait_subscribed()
    for qos in (0, 1, 2):
        mosquitto_pub(broker, "cli/qos/%d" % qos, "payload at qos %d" % qos, qos=qos,
                      version=version)
        m = full.message()
        assert (m["topic"], m["payload"], m["qos"], m["retain"]) == (
            "cli/qos/%d" % qos, "payload at qos %d" % qos, qos, 0)
        # The subscription's QoS caps the delivery QoS.
        m = low.message()
        assert (m["topic"], m["payload"], m["qos"]) == (
            "cli/qos/%d" % qos, "payload at qos %d" % qos, 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_set_replace_delete(broker, procs, version):
    topic = "cli/retained/t"
    live = MosquittoSub(procs, broker, topic, qos=1, version=version).wait_subscribed()

    mosquitto_pub(broker, topic, "v1", qos=1, retain=True, version=version)
    m = live.message()
    # Forwarded to an existing subscription: retain is 0 (3.1.1 3.3.1-9; 5.0
    # with Retain As Published 0).
    assert (m["payload"], m["retain"]) == ("v1", 0)

    first = MosquittoSub(procs, broker, topic, qos=1, version=version)
    m = first.message()
    assert (m["topic"], m["payload"], m["retain"], m["qos"]) == (topic, "v1", 1, 1)

    mosquitto_pub(broker, topic, "v2", qos=1, retain=True, version=version)
    assert live.message()["payload"] == "v2"
    second = MosquittoSub(procs, broker, topic, qos=1, version=version).wait_subscribed()
    # Only the replacement is retained: the next message after SUBACK is v2,
    # and after it comes the live marker, nothing else.
    m = second.message()
    assert (m["payload"], m["retain"]) == ("v2", 1)
    mosquitto_pub(broker, topic, "marker-1", qos=1, version=version)
    m = second.message()
    assert (m["payload"], m["retain"]) == ("marker-1", 0)
    assert live.message()["payload"] == "marker-1"

    # An empty retained message deletes; it is still delivered to current
    # subscribers as a normal (empty) message.
    mosquitto_pub(broker, topic, None, qos=1, retain=True, version=version)
    m = live.message()
    assert (m["payloadlen"], m["retain"]) == (0, 0)
    third = MosquittoSub(procs, broker, topic, qos=1, version=version).wait_subscribed()
    mosquitto_pub(broker, topic, "marker-2", qos=1, version=version)
    m = third.message()
    assert (m["payload"], m["retain"]) == ("marker-2", 0), "retained message not deleted"


def _will_publisher(procs, broker, version, client_id):
    """mosquitto_pub in line mode (-l): connected until stdin closes."""
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", version,
            "-i", client_id, "-d", "-q", "1", "-t", "cli/will/data", "-l",
            "--will-topic", "cli/will/status", "--will-payload", "gone:" + client_id,
            "--will-qos", "1"]
    p = procs(args, stdin=True)
    p.wait_line(lambda l: "received CONNACK" in l, what="CONNACK")
    return p


@pytest.mark.parametrize("version", VERSIONS)
def test_will_on_abnormal_disconnect(broker, procs, version):
    sub = MosquittoSub(procs, broker, "cli/will/#", qos=1, version=version).wait_subscribed()
    pub = _will_publisher(procs, broker, version, "will-abnormal")
    pub.send("still here\n")
    m = sub.message()
    assert (m["topic"], m["payload"]) == ("cli/will/data", "still here")
    # SIGKILL: the socket closes without a DISCONNECT.
    pub.p.send_signal(signal.SIGKILL)
    pub.wait()
    m = sub.message()
    assert (m["topic"], m["payload"], m["qos"]) == ("cli/will/status", "gone:will-abnormal", 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_no_will_on_clean_disconnect(broker, procs, version):
    sub = MosquittoSub(procs, broker, "cli/will/#", qos=1, version=version).wait_subscribed()
    pub = _will_publisher(procs, broker, version, "will-clean")
    pub.send("bye\n")
    assert sub.message()["payload"] == "bye"
    pub.close_stdin()  # mosquitto_pub -l sends DISCONNECT at EOF
    assert pub.wait() == 0
    mosquitto_pub(broker, "cli/will/status", "marker", qos=1, version=version)
    m = sub.message()
    assert (m["topic"], m["payload"]) == ("cli/will/status", "marker"), \
        "the will was published after a clean DISCONNECT"


@pytest.mark.parametrize("version", VERSIONS)
def test_persistent_session_receives_offline_messages(broker, procs, version):
    topic, cid = "cli/offline/t", "cli-persistent-" + version
    base = ["-h", "127.0.0.1", "-p", str(broker.port), "-V", version]
    # -c: clean session off (5.0: session expiry "never"); -E: exit after SUBACK.
    run(["mosquitto_sub"] + base + ["-c", "-i", cid, "-q", "2", "-t", topic, "-E"])

    sent = []
    for i in range(6):
        qos = 1 if i < 4 else 2
        mosquitto_pub(broker, topic, "offline %d" % i, qos=qos, version=version)
        sent.append(("offline %d" % i, qos))

    back = MosquittoSub(procs, broker, topic, qos=2, version=version,
                        extra=["-c", "-i", cid])
    got = [(m["payload"], m["qos"]) for m in back.messages(len(sent))]
    assert sorted(got) == sorted(sent)
    for qos in (1, 2):
        # Order is kept per QoS level (5.0 4.6, 3.1.1 4.6).
        assert [g for g in got if g[1] == qos] == [s for s in sent if s[1] == qos]

    # The session was resumed, not recreated: nothing is left queued, and new
    # messages still arrive through the stored subscription.
    mosquitto_pub(broker, topic, "online", qos=1, version=version)
    assert back.message()["payload"] == "online"
