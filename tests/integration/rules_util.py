"""Helpers shared by the test_rules_*.py files: HTTP calls, rule creation
and reading a derived stream back."""

import json
import subprocess

from conftest import wait_for
from test_streams import all_records, api, define, weir_bin  # noqa: F401 (re-exported)


def create_rule(broker, sql, start=True, expect=201):
    st, body = api(broker, "POST", "/api/v1/rules", json.dumps({"sql": sql, "start": start}))
    assert st == expect, body
    return body


def rule(broker, name):
    st, body = api(broker, "GET", "/api/v1/rules/%s" % name)
    assert st == 200, body
    return body


def query(broker, sql):
    return api(broker, "POST", "/api/v1/query", sql, "application/sql")


def post_ndjson(broker, stream, rows):
    st, body = api(broker, "POST", "/api/v1/streams/%s/records" % stream,
                   "\n".join(json.dumps(r) for r in rows), "application/x-ndjson")
    assert st == 200 and body["accepted"] == len(rows), body
    return body


def derived(broker, stream):
    """The fields of every record of a derived stream, in offset order."""
    st, _ = api(broker, "GET", "/api/v1/streams/%s" % stream)
    if st != 200:
        return []
    return [r["fields"] for r in all_records(broker, stream)]


def wait_rows(broker, stream, n, timeout=20.0):
    return wait_for(lambda: (lambda rows: rows if len(rows) >= n else None)(derived(broker, stream)),
                    timeout=timeout, what="%d rows in %s" % (n, stream))


def cli(broker, *args, check=True):
    p = subprocess.run([weir_bin(), "rule", "--node", "http://127.0.0.1:%d" % broker.http_port]
                       + list(args), capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def metric_value(broker, name, rule_name):
    st, body = api(broker, "GET", "/metrics")
    assert st == 200
    key = '%s{rule="%s"} ' % (name, rule_name)
    for line in body.decode().splitlines():
        if line.startswith(key):
            return float(line[len(key):])
    return None
