"""`weir probe` against the real binary: every metric of the methodology is
reported for every path, the counts match the messages sent, the metrics
are consistent with each other (they are differences of the same
timestamps), the result reaches the node (GET /api/v1/probe/results), and
the probe cleans up its stream."""

import json
import os
import subprocess

import pytest
import requests

from conftest import TARGET

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: probe")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(os.path.dirname(HERE))
STORAGE = ["DPC", "DCD", "DDC", "DCS", "LCDC", "LPDS"]
EPS = 1e-6  # ms: float rounding of sums of differences


def weir_bin():
    return os.environ.get("WEIR_BIN") or os.path.join(SRC, "build-test", "weir")


def run_probe(broker, *args):
    cmd = [weir_bin(), "probe", "--mqtt", "127.0.0.1:%d" % broker.port,
           "--http", "http://127.0.0.1:%d" % broker.http_port, "--json"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stderr


def check_summary(s, n):
    assert set(s) == {"n", "min", "avg", "p95", "p99", "max", "std"}
    assert s["n"] == n
    assert s["min"] <= s["avg"] <= s["max"] + EPS
    assert s["min"] <= s["p95"] <= s["p99"] <= s["max"]
    assert s["std"] >= 0


@pytest.mark.parametrize("sync,qos", [("interval=5ms", 1), ("always", 0), ("none", 1)])
def test_probe_reports_every_metric(broker, sync, qos):
    devices, rate, duration = 5, 20, 2
    res, err = run_probe(broker, "--devices", str(devices), "--rate", str(rate),
                         "--duration", str(duration), "--sync", sync, "--qos", str(qos),
                         "--poll", "50", "--payload", "200")
    assert "not every message" not in err
    sent = res["sent"]
    # Randomised instants: about devices x rate x duration messages.
    assert 0.6 * devices * rate * duration <= sent <= 1.4 * devices * rate * duration
    assert res["options"]["sync"] == sync and res["options"]["qos"] == qos
    assert set(res["paths"]) == {"direct", "push", "poll"}
    for name in ("push", "poll"):
        path = res["paths"][name]
        assert path["received"] == sent and path["duplicates"] == 0
        assert set(path["metrics"]) == set(STORAGE)
        for m in STORAGE:
            check_summary(path["metrics"][m], sent)
        mm = path["metrics"]
        # Every difference of stamps taken in order is >= 0 (one clock).
        for m in ("DPC", "DCD", "DDC", "DCS"):
            assert mm[m]["min"] >= 0, (name, m, mm[m])
        # Per sample LPDS = DPC + LCDC + DCS and LCDC = DCD + DDC; so:
        assert abs(mm["LPDS"]["avg"] - (mm["DPC"]["avg"] + mm["LCDC"]["avg"]
                                        + mm["DCS"]["avg"])) < 1e-3
        assert abs(mm["LCDC"]["avg"] - (mm["DCD"]["avg"] + mm["DDC"]["avg"])) < 1e-3
        for a, b in (("LPDS", "DPC"), ("LPDS", "LCDC"), ("LCDC", "DCD"), ("LCDC", "DDC")):
            for stat in ("min", "max"):
                assert mm[a][stat] + EPS >= mm[b][stat], (name, a, b, stat)
    direct = res["paths"]["direct"]
    assert direct["received"] == sent
    check_summary(direct["metrics"]["LPS"], sent)
    assert direct["metrics"]["LPS"]["min"] >= 0
    # Polling every 50 ms cannot read back sooner, on average, than a push on
    # commit does (the push reads as soon as the store reports the commit).
    assert res["paths"]["poll"]["metrics"]["DDC"]["avg"] > res["paths"]["push"]["metrics"]["DDC"]["avg"]
    # The headline metrics and histograms.
    assert set(res["metrics"]) == set(STORAGE) | {"LPS"}
    for m, s in res["metrics"].items():
        check_summary(s, sent)
        h = res["histograms"][m]
        assert len(h["counts"]) == len(h["bounds_ms"]) + 1
        assert sum(h["counts"]) == sent
        assert h["bounds_ms"] == sorted(h["bounds_ms"])
    assert res["metrics"]["LPDS"] == res["paths"]["push"]["metrics"]["LPDS"]
    assert "DRL" in res["not_measured"]

    # Posted to the node, and the probe stream is gone.
    base = "http://127.0.0.1:%d" % broker.http_port
    latest = requests.get(base + "/api/v1/probe/results", timeout=10).json()["results"]
    assert latest[0]["id"] == res["id"] and latest[0]["metrics"] == res["metrics"]
    names = [s["name"] for s in requests.get(base + "/api/v1/streams", timeout=10).json()["streams"]]
    assert res["options"]["stream"] not in names


def test_probe_table_and_results_history(broker):
    base = "http://127.0.0.1:%d" % broker.http_port
    cmd = [weir_bin(), "probe", "--mqtt", "127.0.0.1:%d" % broker.port, "--http", base,
           "--devices", "3", "--rate", "10", "--duration", "1", "--paths", "direct,push"]
    for _ in range(2):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    out = p.stdout
    for m in ("DPC", "DCD", "DDC", "DCS", "LCDC", "LPDS", "LPS"):
        assert any(line.startswith(m + " ") for line in out.splitlines()), out
    assert "poll" not in out.split("\n\n")[1]
    got = requests.get(base + "/api/v1/probe/results?n=5", timeout=10).json()["results"]
    assert len(got) == 2 and got[0]["started"] >= got[1]["started"]
    assert set(got[0]["paths"]) == {"direct", "push"}
    assert requests.get(base + "/api/v1/probe/results?n=0", timeout=10).status_code == 400
    r = requests.post(base + "/api/v1/probe/results", data="{}", timeout=10)
    assert r.status_code == 400
    # Kept across a restart (the catalog holds the latest).
    broker.restart()
    got = requests.get(base.rsplit(":", 1)[0] + ":%d/api/v1/probe/results" % broker.http_port,
                       timeout=10).json()["results"]
    assert len(got) == 1 and got[0]["id"] == json.loads(json.dumps(got[0]))["id"]


def test_probe_refuses_bad_options(broker):
    p = subprocess.run([weir_bin(), "probe", "--devices", "0"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2
    p = subprocess.run([weir_bin(), "probe", "--mqtt", "127.0.0.1:%d" % broker.port,
                        "--http", "http://127.0.0.1:%d" % broker.http_port, "--sync", "bogus",
                        "--duration", "1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "cannot define stream" in p.stderr
