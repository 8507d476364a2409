"""Crash safety and recovery of the stream store through the real binary.

Several publishers send QoS 1 readings with sequence numbers; weir is killed
with SIGKILL at random moments, several times, and restarted on the same data
directory. At the end every acknowledged reading is present exactly once, in
order per key, and every record served decodes. Run with `always` and with
`interval` sync.

Then damage on disk: a truncated segment tail, a flipped bit and a deleted
index are reported by `weir check`, recovered at start-up as documented, and
`weir check` is clean afterwards."""

import glob
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.parse

import paho.mqtt.client as paho
import pytest

from conftest import TARGET, WAIT, wait_for
from test_streams import all_records, api, define, weir_bin

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: streams")

PUBLISHERS = 4
ROUNDS = 4


class Publisher(threading.Thread):
    """Publishes {"seq": n} at QoS 1, one at a time, and remembers which
    sequence numbers were acknowledged (PUBACK received). Stops at the first
    connection loss."""

    def __init__(self, port, key, first_seq):
        super().__init__(daemon=True)
        self.port, self.key, self.seq = port, key, first_seq
        self.acked = []
        self.sent_max = first_seq - 1
        self.stop = threading.Event()

    def run(self):
        c = paho.Client(client_id="crash-%s" % self.key, clean_session=True,
                        protocol=paho.MQTTv311, reconnect_on_failure=False)
        try:
            c.connect("127.0.0.1", self.port, 30)
        except OSError:
            return
        c.loop_start()
        try:
            while not self.stop.is_set():
                info = c.publish("plant/%s/reading" % self.key,
                                 json.dumps({"seq": self.seq, "key": self.key}), qos=1)
                self.sent_max = self.seq
                if info.rc != paho.MQTT_ERR_SUCCESS:
                    return
                info.wait_for_publish(2.0)
                if not info.is_published():
                    return
                self.acked.append(self.seq)
                self.seq += 1
        except (RuntimeError, ValueError, OSError):
            return
        finally:
            c.loop_stop()
            try:
                c.disconnect()
            except Exception:
                pass


def run_crash_rounds(make_broker, sync):
    rng = random.Random(0xC0FFEE)
    b = make_broker()
    define(b, name="readings", source="mqtt:plant/+/reading", format="json", key="key",
           partitions=2, sync=sync, segment_bytes="64k")
    acked = {k: [] for k in map(str, range(PUBLISHERS))}
    next_seq = {k: 0 for k in acked}
    for rnd in range(ROUNDS):
        pubs = [Publisher(b.port, k, next_seq[k]) for k in acked]
        for p in pubs:
            p.start()
        # Wait until every publisher has some acknowledged readings, then a
        # little more at random, then kill without warning.
        wait_for(lambda: all(len(p.acked) >= 5 for p in pubs), timeout=20,
                 what="publishers making progress")
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        while time.monotonic() < deadline:
            time.sleep(0.01)  # not synchronisation: a random crash instant
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        b.proc = None
        for p in pubs:
            p.stop.set()
            p.join(10)
            acked[p.key] += p.acked
            # Never reuse a number that may have been stored unacknowledged.
            next_seq[p.key] = p.sent_max + 1
        b.start(new_ports=False)
    # After the last restart: every acknowledged reading exactly once, in
    # order per key, and nothing unreadable.
    recs = all_records(b, "readings")
    by_key = {}
    for r in sorted(recs, key=lambda r: (r["partition"], r["offset"])):
        assert r["fields"]["key"] == r["key"]
        by_key.setdefault(r["key"], []).append(r["fields"]["seq"])
    total_acked = 0
    for k, seqs in acked.items():
        stored = by_key.get(k, [])
        assert stored == sorted(stored), "key %s out of order" % k
        assert len(stored) == len(set(stored)), "key %s has duplicates" % k
        missing = sorted(set(seqs) - set(stored))
        assert not missing, "key %s lost acknowledged readings %s" % (k, missing[:10])
        total_acked += len(seqs)
    assert total_acked >= PUBLISHERS * 5 * ROUNDS
    out = subprocess.run([weir_bin(), "check", b.data_dir], capture_output=True, text=True,
                         timeout=60)
    # The node is running: check reads what is there, which must be clean
    # for everything committed (a batch being written may show as a tail).
    return b, total_acked, out


@pytest.mark.parametrize("sync", ["always", "interval=5ms"])
def test_sigkill_loses_no_acknowledged_reading(make_broker, sync):
    b, n, _ = run_crash_rounds(make_broker, sync)
    assert n > 0


def segment_files(data_dir, stream):
    return sorted(glob.glob(os.path.join(data_dir, "streams", stream, "*", "*.log")))


def test_damaged_tail_and_index_are_reported_and_recovered(broker, client):
    b = broker
    define(b, name="d", source="mqtt:d/+", format="json", key="topic:2", sync="always")
    c = client("p", v=5)
    for i in range(200):
        c.publish("d/k", json.dumps({"i": i, "pad": "x" * 50}), qos=1)
    c.close()
    b.stop()
    logs = segment_files(b.data_dir, "d")
    assert logs, "no segment files"
    seg = max(logs, key=os.path.getsize)
    size = os.path.getsize(seg)
    clean = subprocess.run([weir_bin(), "check", b.data_dir], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # 1. A torn tail: cut the last batch in half.
    with open(seg, "r+b") as f:
        f.truncate(size - 40)
    # 2. A deleted index.
    for idx in glob.glob(os.path.join(os.path.dirname(seg), "*.idx")):
        os.unlink(idx)
    bad = subprocess.run([weir_bin(), "check", b.data_dir], capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout
    assert "DAMAGED" in bad.stdout
    b.start(new_ports=False)
    log = b.read_log()
    assert "event=recovered stream=d" in log
    recs = all_records(b, "d")
    got = [r["fields"]["i"] for r in recs]
    assert got == list(range(len(got))) and 150 <= len(got) < 200
    before = len(got)
    b.stop()
    after = subprocess.run([weir_bin(), "check", b.data_dir], capture_output=True, text=True)
    assert after.returncode == 0, after.stdout
    # 3. A flipped bit in the middle of the data: the damaged batch is never
    # served; what comes before it is.
    seg = max(segment_files(b.data_dir, "d"), key=os.path.getsize)
    with open(seg, "r+b") as f:
        f.seek(os.path.getsize(seg) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x10]))
    flipped = subprocess.run([weir_bin(), "check", b.data_dir], capture_output=True, text=True)
    assert flipped.returncode == 1 and "DAMAGED" in flipped.stdout
    b.start(new_ports=False)
    recs = all_records(b, "d")
    got = [r["fields"]["i"] for r in recs]
    assert got == sorted(got) and len(got) < before
    assert all(isinstance(r["fields"]["i"], int) for r in recs)
