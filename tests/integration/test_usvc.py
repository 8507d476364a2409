"""The μ-service rule-template API (docs/api.md, "Rule templates"): the
installation / jobinfo / relocation objects of the literature, each job type
translated to a SQL rule, errors, forwarding to peers, and a move of a
running single-filter from an `edge` node to a `core` node while readings
flow, with the documented delivery guarantee measured.

Translation (?dry_run=true), validation and forwarding need no rule
runtime. The tests that run rules are skipped, with the reason, on a build
whose node answers 503 "the rule runtime is not available" (the runtime,
engine/rules.c, is built on another branch); they run as soon as it is
linked.

Two-node setup (what a plant would do): the devices publish their readings
to the edge node's broker, and the same readings reach the core node's
broker (in a plant through an MQTT bridge; here the test publisher sends
each reading to both brokers). A rule reads from and writes to the broker of
the node that runs it, so alerts appear on the edge broker before the move
and on the core broker after it; the test subscribes to both."""

import json
import queue
import threading
import time
import urllib.error
import urllib.request

import paho.mqtt.client as paho
import pytest

from conftest import WAIT, free_port, let_time_pass, wait_for, weir_only

pytestmark = weir_only("the μ-service API")

THRESHOLD = 30


def call(port, method, path, body=None, timeout=30, headers=None):
    """(status, parsed JSON body) of an HTTP call to 127.0.0.1:port."""
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def post(node, path, body, **kw):
    return call(node.http_port, "POST", path, body, **kw)


def installation(job_type="single-filter", runtime=None, job_id=None, props=None,
                 inp="mqtt://127.0.0.1:1883/plant/+/temp", out="mqtt://127.0.0.1:1883/alerts/temp"):
    headers = {"jobType": job_type, "targetResource": "http://127.0.0.1"}
    if runtime is not None:
        headers["runtime"] = runtime
    if job_id is not None:
        headers["jobId"] = job_id
    if props is None:
        props = {"condition": ">", "threshold": THRESHOLD, "fieldName": "temperature",
                 "fieldJsonPath": "$.temperature"}
    return {"headers": headers,
            "jobConfig": {"connectors": {"inputEndpoint": inp, "outputEndpoint": out},
                          "jobProps": props}}


def has_runtime(node):
    status, body = call(node.http_port, "GET", "/api/jobs")
    return status != 503


def need_runtime(*nodes):
    for n in nodes:
        if not has_runtime(n):
            pytest.skip("this build has no rule runtime yet (engine/rules.c): /api/jobs "
                        "answers 503")


def check_jobinfo(ji, runtime, job_type, status):
    assert set(ji) == {"runtime", "jobId", "jobType", "jobStatus", "configFileName"}, ji
    assert ji["runtime"] == runtime
    assert ji["jobType"] == job_type
    assert ji["jobStatus"] == status
    assert ji["configFileName"] == "usvc_" + ji["jobId"].replace("-", "_")


class Collector:
    """Subscribes to a topic filter on one broker and keeps every message
    (payload parsed as JSON) in a queue."""

    def __init__(self, port, topic, name):
        self.name = name
        self.q = queue.Queue()
        self.subscribed = threading.Event()
        self.c = paho.Client(client_id="usvc-%s-%d" % (name, port), clean_session=True)
        self.c.on_message = lambda c, ud, m: self.q.put(m.payload)
        self.c.on_subscribe = lambda c, ud, mid, codes: self.subscribed.set()
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()
        self.c.subscribe(topic, 1)
        assert self.subscribed.wait(WAIT), "SUBACK from %s" % name

    def drain(self):
        out = []
        while True:
            try:
                out.append(json.loads(self.q.get_nowait()))
            except queue.Empty:
                return out

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class Publisher:
    """Publishes QoS 1 readings to one or more brokers."""

    def __init__(self, ports):
        self.clients = []
        for p in ports:
            c = paho.Client(client_id="usvc-pub-%d" % p, clean_session=True)
            c.connect("127.0.0.1", p, 30)
            c.loop_start()
            self.clients.append(c)

    def publish(self, topic, payload):
        infos = [c.publish(topic, json.dumps(payload), qos=1) for c in self.clients]
        for i in infos:
            i.wait_for_publish(WAIT)
            assert i.is_published()

    def close(self):
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


# ---------------------------------------------------------------------------
# Translation and validation (no rule runtime needed)
# ---------------------------------------------------------------------------


def test_templates_translate(broker):
    """Each job type becomes the documented SQL rule; a jobId is generated
    (UUID-like) unless the installation gives one."""
    st, r = post(broker, "/api/install?dry_run=true", installation())
    assert st == 200, r
    job_id = r["jobId"]
    assert len(job_id) == 36 and job_id.count("-") == 4, job_id
    rule = "usvc_" + job_id.replace("-", "_")
    assert r["configFileName"] == rule
    assert r["sql"] == ('CREATE RULE "%s" AS SELECT * FROM "%s_in" WHERE "temperature" > 30 '
                        "EMIT TO 'mqtt:alerts/temp'" % (rule, rule))
    assert r["streams"] == [{"name": rule + "_in", "source": "mqtt:plant/+/temp",
                             "format": "json", "retention": "1d"}]
    assert r["installation"]["headers"]["jobId"] == job_id

    # A nested JSON path, the paper's "=" and a string threshold.
    st, r = post(broker, "/api/install?dry_run=true", installation(
        job_id="nested-1", props={"condition": "=", "threshold": "open", "fieldName": "state",
                                  "fieldJsonPath": "$.valve.state"}))
    assert st == 200, r
    assert r["sql"] == ('CREATE RULE "usvc_nested_1" AS SELECT *, json_get("valve", \'state\') '
                        'AS "state" FROM "usvc_nested_1_in" WHERE '
                        "json_get_text(\"valve\", 'state') = 'open' EMIT TO 'mqtt:alerts/temp'")

    st, r = post(broker, "/api/install?dry_run=true", installation(
        "avg-aggregation", job_id="avg1", out="stream:averages",
        props={"fieldName": "temperature", "windowSize": "5s", "windowSlide": "1s",
               "groupBy": "device"}))
    assert st == 200, r
    assert r["sql"] == ('CREATE RULE "usvc_avg1" AS SELECT "device" AS "device", '
                        'avg("temperature") AS "temperature_avg", count(*) AS "count" FROM '
                        '"usvc_avg1_in" GROUP BY "device", HOPPING(SIZE 5000ms, ADVANCE 1000ms) '
                        "EMIT TO 'stream:averages'")

    st, r = post(broker, "/api/install?dry_run=true", installation(
        "sum-aggregation", job_id="sum1", inp="stream:energy",
        props={"fieldName": "kwh", "windowSize": 60000, "condition": ">", "threshold": 10}))
    assert st == 200, r
    assert r["streams"] == []
    assert r["sql"] == ('CREATE RULE "usvc_sum1" AS SELECT sum("kwh") AS "kwh_sum", count(*) AS '
                        '"count" FROM "energy" GROUP BY TUMBLING(60000ms) HAVING "kwh_sum" > 10 '
                        "EMIT TO 'mqtt:alerts/temp'")

    st, r = post(broker, "/api/install?dry_run=true", installation(
        "single-join", job_id="j1", inp=["mqtt:line/pressure", "mqtt:line/valve"],
        props={"joinKey": "device", "leftField": "bar", "rightField": "$.valve.open",
               "windowSize": "2s"}))
    assert st == 200, r
    assert [s["name"] for s in r["streams"]] == ["usvc_j1_in", "usvc_j1_in2"]
    assert r["sql"] == ('CREATE RULE "usvc_j1" AS SELECT l."device" AS "device", l."bar" AS '
                        '"bar", json_get(r."valve", \'open\') AS "open" FROM "usvc_j1_in" AS l '
                        'JOIN "usvc_j1_in2" AS r ON l."device" = r."device" WITHIN 2000ms '
                        "EMIT TO 'mqtt:alerts/temp'")


@pytest.mark.parametrize("body,status,needle", [
    ("{not json", 400, "JSON installation object"),
    ([], 400, "JSON installation object"),
    (installation("pattern-cep"), 400, "unknown jobType 'pattern-cep'"),
    (installation(props={"condition": "~", "threshold": 1, "fieldName": "t"}), 400,
     "jobProps.condition"),
    (installation(props={"condition": ">", "fieldName": "t"}), 400, "jobProps.threshold"),
    (installation(props={"condition": ">", "threshold": 1}), 400, "fieldName"),
    (installation(props={"condition": ">", "threshold": 1, "fieldJsonPath": "a.b"}), 400,
     "starts with '$'"),
    (installation("avg-aggregation", props={"fieldName": "t"}), 400, "windowSize"),
    (installation("single-join", props={"joinKey": "d", "leftField": "a", "rightField": "b",
                                        "windowSize": 1}), 400, "array of two"),
    (installation(inp="amqp://rabbit/queue"), 400, "inputEndpoint"),
    (installation(out="mqtt:alerts/#"), 400, "outputEndpoint"),
    (installation(runtime="mars"), 400, "unknown headers.runtime 'mars'"),
])
def test_install_errors(broker, body, status, needle):
    st, r = post(broker, "/api/install", body)
    assert st == status, r
    assert needle in r["error"], r
    assert r["code"]


def test_jobinfo_and_relocation_errors(broker):
    st, r = post(broker, "/api/start", {"runtime": "weir"})
    assert st == 400 and "jobId" in r["error"], r
    st, r = post(broker, "/api/stop", {"jobId": "bad id"})
    assert st == 400 and "jobId" in r["error"], r
    st, r = post(broker, "/api/uninstall", {"jobId": "x", "runtime": "mars"})
    assert st == 400 and "mars" in r["error"], r
    st, r = post(broker, "/api/move", {"jobInfo": {"jobId": "x"}})
    assert st == 400 and "target_runtime" in r["error"], r
    st, r = post(broker, "/api/move", {"target_runtime": "core"})
    assert st == 400 and "jobInfo" in r["error"], r
    st, r = post(broker, "/api/move", {"target_runtime": "core", "jobInfo": {"jobId": "x"}})
    assert st == 400 and "unknown target_runtime 'core'" in r["error"], r


def test_forward_to_unreachable_peer(make_broker):
    """An installation for a peer is forwarded to it; a peer that does not
    answer gives 502 with the reason, and nothing is installed here."""
    dead = free_port()
    edge = make_broker({"node.name": "edge",
                        "node.peers": "core=http://127.0.0.1:%d" % dead})
    st, r = post(edge, "/api/install", installation(runtime="core"))
    assert st == 502, r
    assert r["code"] == "EIO" and "core" in r["error"], r
    # A forwarded request is never forwarded again.
    st, r = post(edge, "/api/install", installation(runtime="core"),
                 headers={"X-Weir-Forwarded": "1"})
    assert st == 400 and "not forwarded again" in r["error"], r
    if has_runtime(edge):
        assert call(edge.http_port, "GET", "/api/jobs") == (200, [])


# ---------------------------------------------------------------------------
# Jobs on one node (needs the rule runtime)
# ---------------------------------------------------------------------------


def test_lifecycle_single_filter(broker):
    need_runtime(broker)
    out = Collector(broker.port, "alerts/#", "out")
    pub = Publisher([broker.port])
    try:
        st, ji = post(broker, "/api/install", installation(
            job_id="f1", props={"condition": ">=", "threshold": THRESHOLD, "fieldName": "t",
                                "fieldJsonPath": "$.m.temperature"}))
        assert st == 200, ji
        check_jobinfo(ji, "weir", "single-filter", "INSTALLED")
        st, rule = call(broker.http_port, "GET", "/api/v1/rules/usvc_f1")
        assert st == 200, rule
        assert rule["options"]["usvc"]["installation"]["headers"]["jobId"] == "f1"
        st, again = post(broker, "/api/install", installation(job_id="f1"))
        assert st == 409, again

        st, ji = post(broker, "/api/start", ji)
        assert st == 200, ji
        check_jobinfo(ji, "weir", "single-filter", "RUNNING")
        for i, t in enumerate([10, 30, 29.5, 31, 45]):
            pub.publish("plant/p1/temp", {"seq": i, "m": {"temperature": t}})
        got = wait_for(lambda: len(out.q.queue) >= 3 and out.drain(), what="3 alerts")
        assert sorted(m["seq"] for m in got) == [1, 3, 4], got
        assert all(m["t"] >= THRESHOLD for m in got), got

        st, ji = post(broker, "/api/stop", ji)
        assert st == 200 and ji["jobStatus"] == "STOPPED", ji
        st, jobs = call(broker.http_port, "GET", "/api/jobs")
        assert st == 200 and jobs == [ji], jobs
        st, ji = post(broker, "/api/uninstall", ji)
        assert st == 200 and ji["jobStatus"] == "UNINSTALLED", ji
        assert call(broker.http_port, "GET", "/api/jobs") == (200, [])
        assert call(broker.http_port, "GET", "/api/v1/streams/usvc_f1_in")[0] == 404
        st, r = post(broker, "/api/start", ji)
        assert st == 404, r
    finally:
        pub.close()
        out.close()


def test_each_job_type_runs(broker):
    """Every template is accepted by the rule engine and runs."""
    need_runtime(broker)
    st, r = call(broker.http_port, "POST", "/api/v1/streams",
                 {"name": "valves", "source": "mqtt:line/valve", "format": "json"})
    assert st in (200, 201), r
    jobs = [
        installation("sum-aggregation", job_id="s1",
                     props={"fieldName": "kwh", "windowSize": 500}),
        installation("avg-aggregation", job_id="a1",
                     props={"fieldName": "temperature", "windowSize": "1s",
                            "windowSlide": "500ms", "groupBy": "device"}),
        installation("single-join", job_id="j1", inp=["mqtt:line/pressure", "stream:valves"],
                     props={"joinKey": "device", "leftField": "bar", "rightField": "open",
                            "windowSize": "2s"}),
    ]
    for inst in jobs:
        st, ji = post(broker, "/api/install?start=true", inst)
        assert st == 200, ji
        check_jobinfo(ji, "weir", inst["headers"]["jobType"], "RUNNING")
    st, listed = call(broker.http_port, "GET", "/api/jobs")
    assert st == 200
    assert sorted(j["jobId"] for j in listed) == ["a1", "j1", "s1"]
    assert all(j["jobStatus"] == "RUNNING" for j in listed), listed


def test_sum_and_join_results(broker):
    """A sum over tumbling windows adds up to the readings' total whatever
    the window boundaries were; a join pairs a pressure with a valve state
    of the same device."""
    need_runtime(broker)
    out = Collector(broker.port, "out/#", "out")
    pub = Publisher([broker.port])
    try:
        st, r = call(broker.http_port, "POST", "/api/v1/streams",
                     {"name": "valves", "source": "mqtt:line/valve", "format": "json"})
        assert st in (200, 201), r
        st, ji = post(broker, "/api/install?start=true", installation(
            "sum-aggregation", job_id="sum", inp="mqtt:meter/+/kwh", out="mqtt:out/sum",
            props={"fieldName": "kwh", "windowSize": 200}))
        assert st == 200, ji
        st, ji = post(broker, "/api/install?start=true", installation(
            "single-join", job_id="join", inp=["mqtt:line/pressure", "stream:valves"],
            out="mqtt:out/join",
            props={"joinKey": "device", "leftField": "$.p.bar", "rightField": "open",
                   "windowSize": "5s"}))
        assert st == 200, ji

        for v in range(1, 11):
            pub.publish("meter/m1/kwh", {"kwh": v})
        pub.publish("line/valve", {"device": "d1", "open": True})
        pub.publish("line/pressure", {"device": "d1", "p": {"bar": 3.5}})
        pub.publish("line/pressure", {"device": "d2", "p": {"bar": 9.0}})  # no valve: no row
        # Event time is arrival time: a reading after the last window's end
        # closes it (time has to pass for that, by definition).
        let_time_pass(0.3)
        pub.publish("meter/m1/kwh", {"kwh": 1000})
        rows = []

        def sums_done():
            rows.extend(out.drain())
            return (sum(r.get("count", 0) for r in rows if "kwh_sum" in r) >= 10
                    and any("bar" in r for r in rows))

        wait_for(sums_done, timeout=15, what="the windows of the 10 readings and the join row")
        sums = [r for r in rows if "kwh_sum" in r]
        assert sum(r["kwh_sum"] for r in sums) == 55, sums
        assert sum(r["count"] for r in sums) == 10, sums
        joins = [r for r in rows if "bar" in r]
        assert [(r["device"], r["bar"], r["open"]) for r in joins] == [("d1", 3.5, True)], rows
    finally:
        pub.close()
        out.close()


# ---------------------------------------------------------------------------
# Two nodes: edge and core
# ---------------------------------------------------------------------------


def two_nodes(make_broker, core_url=None):
    """edge and core on loopback, each the other's peer (free ports chosen
    first, since each configuration names the other's port)."""
    edge = make_broker({"node.name": "edge"}, start=False)
    core = make_broker({"node.name": "core"}, start=False)
    for n in (edge, core):
        n.port, n.http_port = free_port(), free_port()
    edge.config["node.peers"] = "core=%s" % (core_url or "http://127.0.0.1:%d" % core.http_port)
    core.config["node.peers"] = "edge=http://127.0.0.1:%d" % edge.http_port
    edge.start(new_ports=False)
    core.start(new_ports=False)
    return edge, core


def test_forwarding_between_nodes(make_broker):
    """install / start / stop / uninstall sent to the edge for runtime core
    run on the core; unknown job types are refused before forwarding."""
    edge, core = two_nodes(make_broker)
    st, r = post(edge, "/api/install", installation("no-such-type", runtime="core"))
    assert st == 400 and "unknown jobType" in r["error"], r
    need_runtime(edge, core)
    st, ji = post(edge, "/api/install", installation(runtime="core", job_id="fw"))
    assert st == 200, ji
    check_jobinfo(ji, "core", "single-filter", "INSTALLED")
    assert call(edge.http_port, "GET", "/api/jobs") == (200, [])
    st, ji = post(edge, "/api/start", ji)
    assert st == 200 and ji["jobStatus"] == "RUNNING" and ji["runtime"] == "core", ji
    st, jobs = call(core.http_port, "GET", "/api/jobs")
    assert jobs == [ji], jobs
    # A move asked of the edge for a job on the core is done by the core.
    st, moved = post(edge, "/api/move", {"target_runtime": "edge", "jobInfo": ji})
    assert st == 200, moved
    check_jobinfo(moved, "edge", "single-filter", "RUNNING")
    assert call(core.http_port, "GET", "/api/jobs") == (200, [])
    assert call(edge.http_port, "GET", "/api/jobs") == (200, [moved])
    # Moving a job to where it is changes nothing.
    assert post(edge, "/api/move", {"target_runtime": "edge", "jobInfo": moved}) == (200, moved)
    # And back, stopped: it stays stopped on the target.
    st, ji = post(core, "/api/stop", moved)
    assert st == 200 and ji["jobStatus"] == "STOPPED" and ji["runtime"] == "edge", ji
    st, ji = post(core, "/api/move", {"target_runtime": "core", "jobInfo": ji})
    assert st == 200, ji
    check_jobinfo(ji, "core", "single-filter", "INSTALLED")
    assert call(edge.http_port, "GET", "/api/jobs") == (200, [])
    st, ji = post(edge, "/api/uninstall", ji)
    assert st == 200 and ji["jobStatus"] == "UNINSTALLED", ji
    assert call(core.http_port, "GET", "/api/jobs") == (200, [])


def test_move_edge_to_core_while_readings_flow(make_broker):
    """The documented guarantee of a move of a running job (docs/api.md):
    every reading above the threshold is emitted at least once overall; the
    edge emits a prefix of the readings, the core a suffix, and the only
    duplicates are a contiguous run of readings that arrived while both ran
    (between the core's install and the edge's stop)."""
    edge, core = two_nodes(make_broker)
    need_runtime(edge, core)
    outs = {"edge": Collector(edge.port, "alerts/#", "edge"),
            "core": Collector(core.port, "alerts/#", "core")}
    pub = Publisher([edge.port, core.port])
    try:
        st, ji = post(edge, "/api/install?start=true", installation(runtime="edge"))
        assert st == 200, ji
        check_jobinfo(ji, "edge", "single-filter", "RUNNING")

        n = 400
        moved = {}

        def do_move():
            moved["answer"] = post(edge, "/api/move", {
                "target_runtime": "core", "targetResource": "http://127.0.0.1:%d" % core.http_port,
                "jobInfo": ji})
            moved["after_seq"] = sent[0]

        sent = [0]
        mover = threading.Thread(target=do_move)
        for seq in range(n):
            temp = 40 if seq % 2 else 20  # odd readings are above the threshold
            pub.publish("plant/line1/temp", {"seq": seq, "temperature": temp})
            sent[0] = seq
            if seq == n // 3:
                moved["before_seq"] = seq
                mover.start()
        mover.join(60)
        assert not mover.is_alive(), "the move did not answer"
        st, newji = moved["answer"]
        assert st == 200, newji
        check_jobinfo(newji, "core", "single-filter", "RUNNING")
        assert newji["jobId"] == ji["jobId"]

        want = {s for s in range(n) if s % 2}
        seen = {"edge": [], "core": []}

        def all_seen():
            for k, c in outs.items():
                seen[k] += c.drain()
            return want <= {m["seq"] for m in seen["edge"] + seen["core"]}

        wait_for(all_seen, timeout=30, what="every reading above the threshold, once at least")
        e = {m["seq"] for m in seen["edge"]}
        c = {m["seq"] for m in seen["core"]}
        assert (e | c) == want, "readings below the threshold were emitted"
        dup = e & c
        e_only, c_only = e - c, c - e
        # Order: edge-only < both < core-only, as published.
        assert not e_only or not dup or max(e_only) < min(dup), (sorted(e_only), sorted(dup))
        assert not dup or not c_only or max(dup) < min(c_only), (sorted(dup), sorted(c_only))
        assert not e_only or not c_only or max(e_only) < min(c_only)
        # The switch happened during the move: the edge handled what came
        # before the request, the core what came after the answer.
        assert {s for s in want if s < moved["before_seq"]} <= e
        assert {s for s in want if s > moved["after_seq"]} <= c
        # Each node emitted each reading once at most.
        assert len(seen["edge"]) == len(e) and len(seen["core"]) == len(c)
        print("move: edge emitted %d, core %d, duplicates %d (readings %s)"
              % (len(e), len(c), len(dup), sorted(dup)[:1] + sorted(dup)[-1:]))

        # The job is gone from the edge (rule and input stream), on the core.
        assert call(edge.http_port, "GET", "/api/jobs") == (200, [])
        assert call(edge.http_port, "GET",
                    "/api/v1/streams/%s_in" % ji["configFileName"])[0] == 404
        st, jobs = call(core.http_port, "GET", "/api/jobs")
        assert jobs == [newji], jobs
        assert call(core.http_port, "GET", "/api/v1/rules/%s" % ji["configFileName"])[0] == 200
    finally:
        pub.close()
        for c in outs.values():
            c.close()


def test_move_to_unreachable_target(make_broker):
    """A target that does not answer: 502, and the job runs on here as
    before (it was never stopped), so no reading is lost."""
    dead = free_port()
    edge, core = two_nodes(make_broker, core_url="http://127.0.0.1:%d" % dead)
    need_runtime(edge)
    out = Collector(edge.port, "alerts/#", "edge")
    pub = Publisher([edge.port])
    try:
        st, ji = post(edge, "/api/install?start=true", installation(runtime="edge", job_id="m2"))
        assert st == 200, ji
        pub.publish("plant/a/temp", {"seq": 1, "temperature": 50})
        st, r = post(edge, "/api/move", {"target_runtime": "core", "jobInfo": ji})
        assert st == 502, r
        assert r["code"] == "EIO" and "core" in r["error"], r
        pub.publish("plant/a/temp", {"seq": 2, "temperature": 50})
        got = wait_for(lambda: len(out.q.queue) >= 2 and out.drain(), what="2 alerts")
        assert sorted(m["seq"] for m in got) == [1, 2]
        st, jobs = call(edge.http_port, "GET", "/api/jobs")
        assert [j["jobStatus"] for j in jobs] == ["RUNNING"], jobs
        # An unknown job type is refused on a two-node setup too.
        st, r = post(edge, "/api/install", installation("nope", runtime="core"))
        assert st == 400 and "unknown jobType" in r["error"], r
    finally:
        pub.close()
        out.close()
