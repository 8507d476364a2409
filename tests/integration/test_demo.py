"""The demo profile (`weir serve --demo`, behind `make run`): the climate
stream fills with readings of nine rooms replayed from the shipped UCI file,
stamped with the current time; the replay stops with the node; the profile
refuses non-loopback listeners."""

import os
import subprocess
import time

import pytest
import requests

from conftest import TARGET, WAIT, wait_for

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: demo")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WEIR_SRC") or os.path.dirname(os.path.dirname(HERE))
UCI = os.path.join(SRC, "demo", "data", "uci_appliances_energydata_complete.csv.xz")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split()[2] != "Z"


@pytest.mark.parametrize("config", [{"demo.enabled": "true", "demo.file": UCI,
                                     "demo.speedup": "30000"}])
def test_demo_replays_nine_rooms_and_stops_with_the_node(make_broker, config):
    broker = make_broker(config)
    base = "http://127.0.0.1:%d" % broker.http_port
    t0 = time.time()

    def rooms():
        r = requests.get(base + "/api/v1/streams/climate/records?limit=1000&from=now-5m",
                         timeout=10).json()["records"]
        return {x["key"] for x in r} == {"room%d" % i for i in range(1, 10)} and r

    recs = wait_for(rooms, WAIT, "records of the nine rooms")
    for x in recs:
        f = x["fields"]
        assert set(f) == {"device", "ts", "temperature", "humidity"}
        assert -30 < f["temperature"] < 50 and 0 < f["humidity"] < 100
        # --time now: event time is the time of publishing, not 2016.
        assert abs(x["ts_ns"] / 1e9 - t0) < 60
    # The climate rule: per-room averages over 5 s hopping windows.
    def averages():
        r = requests.get(base + "/api/v1/streams/climate_avg/records?limit=1000&from=now-5m",
                         timeout=10)
        return r.status_code == 200 and len({x["key"] for x in r.json()["records"]}) == 9 \
            and r.json()["records"]
    avg = wait_for(averages, WAIT, "climate_avg rows of the nine rooms")
    for x in avg:
        f = x["fields"]
        assert f["n"] >= 1 and -30 < f["temperature"] < 50
        assert f["window_end"] - f["window_start"] == 5 * 10**9
    log = broker.read_log()
    assert "event=started stream=climate" in log
    assert "event=rule name=climate_avg" in log
    pid = int(log.split("replay_pid=")[1].split()[0])
    assert pid_alive(pid)
    broker.stop()
    assert not pid_alive(pid)


def test_demo_refuses_non_loopback(tmp_path):
    binary = os.environ.get("WEIR_BIN") or os.path.join(SRC, "build-test", "weir")
    p = subprocess.run([binary, "serve", "--demo", "--data", str(tmp_path / "d"),
                        "--mqtt", "0.0.0.0:0", "--http", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "loopback" in p.stdout + p.stderr
