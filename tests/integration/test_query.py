"""History queries in SQL through the binary: POST /api/v1/query and
`weir sql`, checked against a direct computation, and errors with their
position."""

import json
import subprocess
import urllib.parse

import pytest

from conftest import TARGET, WAIT
from test_streams import api, define, weir_bin

pytestmark = pytest.mark.skipif(TARGET != "weir", reason="weir-specific: SQL")


def load(broker):
    define(broker, name="printers", format="json", key="device", timestamp="ts",
           time_format="ms", partitions=2)
    rows = []
    base = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
    for i in range(600):  # ten minutes, one reading a second, three devices
        rows.append({"device": "p%d" % (i % 3), "ts": base + i * 1000,
                     "temperature": 20.0 + (i % 17) * 0.5})
    st, b = api(broker, "POST", "/api/v1/streams/printers/records",
                "\n".join(json.dumps(r) for r in rows), "application/x-ndjson")
    assert st == 200 and b["accepted"] == 600
    return base, rows


def query(broker, sql):
    return api(broker, "POST", "/api/v1/query", sql, "application/sql")


def test_per_minute_average_per_device(broker):
    base, rows = load(broker)
    st, res = query(broker, """
        SELECT time_bucket('1m', ts) AS minute, device, avg(temperature) AS t, count(*) AS n
          FROM printers
         GROUP BY minute, device
         ORDER BY minute, device""")
    assert st == 200, res
    assert res["columns"] == ["minute", "device", "t", "n"]
    want = {}
    for r in rows:
        k = ((r["ts"] - base) // 60_000, r["device"])
        want.setdefault(k, []).append(r["temperature"])
    got = res["rows"]
    assert len(got) == len(want) == 30
    for (m, dev), vals in sorted(want.items()):
        row = got.pop(0)
        assert row[1] == dev and row[3] == len(vals)
        assert row[2] == pytest.approx(sum(vals) / len(vals))


def test_where_having_order_limit(broker):
    load(broker)
    st, res = query(broker, """
        SELECT device, max(temperature) AS hi FROM printers
         WHERE temperature > 24 GROUP BY device HAVING count(*) > 10
         ORDER BY device DESC LIMIT 2""")
    assert st == 200, res
    assert [r[0] for r in res["rows"]] == ["p2", "p1"]
    assert all(r[1] == 28.0 for r in res["rows"])


def test_errors_have_positions(broker):
    load(broker)
    st, res = query(broker, "SELECT avg(temperature)\n  FROM nowhere")
    assert st == 400 and res["line"] == 2 and res["column"] >= 3, res
    st, res = query(broker, "SELECT temperature FROM printers WHERE")
    assert st == 400 and res["line"] == 1 and res["column"] > 30, res
    st, res = query(broker, "SELECT nosuchfn(temperature) FROM printers")
    assert st == 400 and res["line"] == 1, res


def test_weir_sql_cli(broker):
    load(broker)
    url = "http://127.0.0.1:%d" % broker.http_port
    out = subprocess.run([weir_bin(), "sql", "--json", "--url", url,
                          "SELECT count(*) AS n FROM printers"],
                         capture_output=True, text=True, timeout=WAIT * 4)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == [[600]]
    bad = subprocess.run([weir_bin(), "sql", "--url", url, "SELECT FROM printers"],
                         capture_output=True, text=True, timeout=WAIT * 4)
    assert bad.returncode == 1 and "^" in bad.stderr
