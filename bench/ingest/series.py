#!/usr/bin/python3
"""bench/ingest/series.py -- one JSON line about a timed series query of
bench/ingest/run.sh (standard library only).

usage: series.py weir|influxdb TIMES ANSWER RECORDS CPU0 CPU1 [WEIR_ANSWER]

TIMES holds one "<http code> <seconds>" line per run; ANSWER is the last
answer: weir's {"t": [...], "v": [...], "n": [...]} or InfluxDB's
{"results": [{"series": [{"values": [[t, mean], ...]}]}]}. RECORDS is how
many readings the system held, CPU0/CPU1 the server's CPU seconds before
and after the runs. With WEIR_ANSWER (influxdb only) the two series are
compared bucket by bucket.
"""
import json
import statistics
import sys


def buckets(system, doc):
    """{bucket start ms: value} of the non-empty buckets, and the count of
    readings behind them when the system says."""
    if system == "weir":
        out = {t: v for t, v, n in zip(doc["t"], doc["v"], doc["n"]) if n}
        return out, sum(doc["n"])
    series = doc["results"][0].get("series") or [{"values": []}]
    return {t: v for t, v in series[0]["values"] if v is not None}, None


def main():
    system, times_path, answer_path, records, cpu0, cpu1 = sys.argv[1:7]
    runs, codes = [], []
    with open(times_path) as f:
        for line in f:
            code, secs = line.split()
            codes.append(int(code))
            runs.append(float(secs))
    ok = [s for c, s in zip(codes, runs) if c == 200]
    res = {"system": system, "runs_s": runs, "http_codes": codes,
           "median_s": statistics.median(ok) if len(ok) == len(runs) and ok else None,
           "records": int(records or 0),
           "server_cpu_s_per_query": (float(cpu1) - float(cpu0)) / len(runs) if runs else None}
    try:
        with open(answer_path) as f:
            doc = json.load(f)
        b, counted = buckets(system, doc)
        res.update(buckets=len(b), readings_counted=counted)
        if len(sys.argv) > 7:
            try:
                with open(sys.argv[7]) as f:
                    wb, _ = buckets("weir", json.load(f))
                common = set(b) & set(wb)
                diff = max((abs(b[t] - wb[t]) for t in common), default=None)
                res["same_as_weir"] = {"buckets_here": len(b), "buckets_weir": len(wb),
                                       "common": len(common), "max_abs_diff": diff,
                                       "equal": len(common) == len(b) == len(wb) and
                                       diff is not None and diff < 1e-9}
            except (OSError, ValueError, KeyError):
                res["same_as_weir"] = None
    except (OSError, ValueError, KeyError, IndexError) as e:
        res.update(buckets=None, error=f"unreadable answer: {e}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
