"""Exactly-once derived streams across kill -9: a rule keeps running while
readings flow, weir is killed with SIGKILL, restarted on the same data
directory, and the rest of the readings arrive. The derived stream must
equal the one an uninterrupted node writes from the same input: the same
rows, none missing, none twice.

The uninterrupted reference is a second node fed the very records the first
node's input stream holds (read back in offset order), so an input record
whose acknowledgement the kill swallowed cannot make the comparison unfair.
"""

import json

import pytest

from conftest import TARGET, wait_for
from rules_util import all_records, api, create_rule, define, derived, post_ndjson, rule

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: rules")

BASE = 1_700_000_000_000


def setup_node(broker, sql, partitions):
    define(broker, name="readings", format="json", key="device", timestamp="ts",
           time_format="ms", partitions=partitions)
    create_rule(broker, sql)


def batches(n_batches, per_batch):
    """Readings of 4 devices, 50 ms apart in event time, in batches."""
    out, i = [], 0
    for _ in range(n_batches):
        b = []
        for _ in range(per_batch):
            b.append({"device": "d%d" % (i % 4), "ts": BASE + 50 * i, "t": float(i % 97)})
            i += 1
        out.append(b)
    return out


def input_records(broker):
    recs = all_records(broker, "readings")
    recs.sort(key=lambda r: (r["partition"], r["offset"]))
    return recs


def run_crash(make_broker, sql, partitions, min_epoch, n_batches=12, per_batch=500,
              kill_after=6):
    a = make_broker()
    setup_node(a, sql, partitions)
    data = batches(n_batches, per_batch)
    for b in data[:kill_after - 1]:
        post_ndjson(a, "readings", b)
    # the readings so far are processed (their results written) and a
    # checkpoint was stored; then one more batch, and the kill as soon as it
    # is processed: its results (at least) are written after the last
    # checkpoint and are replayed after the restart
    wait_for(lambda: rule(a, "r")["metrics"]["checkpoint_epoch"] >= min_epoch,
             what="a checkpoint")
    post_ndjson(a, "readings", data[kill_after - 1])
    n_sent = kill_after * per_batch
    wait_for(lambda: rule(a, "r")["metrics"]["records_in"] >= n_sent, timeout=20,
             what="the readings to be processed", interval=0.002)
    a.proc.kill()          # SIGKILL: no shutdown, no final checkpoint
    a.proc.wait()
    a.proc = None
    a.start(new_ports=False)
    assert rule(a, "r")["status"] == "running"
    for b in data[kill_after:]:
        post_ndjson(a, "readings", b)
    inputs = input_records(a)

    # the uninterrupted reference, fed the same records in the same order
    b = make_broker()
    setup_node(b, sql, partitions)
    by_part = {}
    for r in inputs:
        by_part.setdefault(r["partition"], []).append(r)
    for p in sorted(by_part):
        rows = [r["fields"] for r in by_part[p]]
        for i in range(0, len(rows), 1000):
            post_ndjson(b, "readings", rows[i:i + 1000])
    return a, b


def settle(broker, stream):
    """Waits until the derived stream stops growing with the rule idle."""
    last = [None]

    def stable():
        m = rule(broker, "r")["metrics"]
        n = len(derived(broker, stream))
        key = (m["records_in"], n)
        done = key == last[0]
        last[0] = key
        return done
    wait_for(stable, timeout=30, what="%s to settle" % stream, interval=0.5)
    return derived(broker, stream)


def test_projection_exactly_once_across_kill9(make_broker):
    sql = ("CREATE RULE r AS SELECT device, t, ts FROM readings "
           "WITH (checkpoint_interval = '30s') EMIT TO 'stream:out'")
    # A long interval: the kill comes after the first checkpoint (taken at
    # creation) and before the next, so every result written before the
    # kill is replayed and must be recognised.
    a, b = run_crash(make_broker, sql, 2, 1)
    got, want = settle(a, "out"), settle(b, "out")
    n_inputs = len(input_records(a))
    assert len(want) == n_inputs
    ids = [r["_id"] for r in got]
    assert len(ids) == len(set(ids)), "duplicates after the restart"
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == \
        sorted(json.dumps(r, sort_keys=True) for r in want)
    assert rule(a, "r")["metrics"]["duplicates_skipped"] == 6 * 500


def test_window_exactly_once_across_kill9(make_broker):
    sql = ("CREATE RULE r AS SELECT device, avg(t) AS avg_t, count(*) AS n, min(t) AS lo "
           "FROM readings GROUP BY device, TUMBLING(1s) "
           "WITH (checkpoint_interval = '200ms') EMIT TO 'stream:win'")
    # One partition: with several, how far one partition runs ahead of the
    # other moves the watermark, and so which records are late, in ANY two
    # runs (crash or not); the comparison is about the crash only.
    a, b = run_crash(make_broker, sql, 1, 2)
    got, want = settle(a, "win"), settle(b, "win")
    assert len(want) > 100
    ids = [r["_id"] for r in got]
    assert len(ids) == len(set(ids)), "duplicates after the restart"
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    print("duplicates skipped after the restart:",
          rule(a, "r")["metrics"]["duplicates_skipped"])
    missing = set(map(key, want)) - set(map(key, got))
    extra = set(map(key, got)) - set(map(key, want))
    assert not missing and not extra, (sorted(missing)[:3], sorted(extra)[:3])
