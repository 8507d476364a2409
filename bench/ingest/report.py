#!/usr/bin/python3
"""bench/ingest/report.py -- turns the raw per-step files of
bench/ingest/run.sh into bench/out/ingest.json and bench/out/ingest.md.

usage: report.py RAW_DIR OUT_JSON OUT_MD

Each raw file is {"step", "status", "note", "result"}; the run's settings
arrive in BENCH_* environment variables. Standard library only.
"""
import datetime
import glob
import json
import os
import platform
import sys

HTTP_TARGETS = [
    ("http_weir_ndjson", "weir", "NDJSON"),
    ("http_weir_line", "weir", "line protocol"),
    ("http_redis", "Redis Streams", "XADD pipeline"),
    ("http_influxdb", "InfluxDB", "line protocol"),
]

# Targets of the issue: (key, text).
TARGETS = {
    "append": "≥ 2,000,000 records/s through the store's batch API",
    "mqtt": "≥ 100,000 readings/s over MQTT QoS 1 into a durable stream, interval sync, no loss",
    "http_redis": "HTTP bulk ingest ≥ 2× Redis XADD",
    "http_influx": "HTTP bulk ingest ≥ 3× InfluxDB",
    "series": "1-minute series over 10 million readings in < 1 s",
}


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fmt(v, digits=0):
    if num(v) is None:
        return "–"
    return f"{v:,.{digits}f}" if digits else f"{round(v):,}"


def pct(v):
    return "–" if num(v) is None else f"{100 * v:.0f}%"


def ratio(a, b):
    return a / b if num(a) is not None and num(b) else None


def load(raw_dir):
    steps = {}
    for path in sorted(glob.glob(os.path.join(raw_dir, "*.json"))):
        with open(path) as f:
            r = json.load(f)
        steps[r["step"]] = r
    return steps


def res(steps, name):
    r = steps.get(name)
    return r["result"] if r and r["status"] == "ok" and r.get("result") else None


def build(steps):
    env = os.environ
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    doc = {
        "suite": "ingest",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {"host": platform.node(), "kernel": platform.release(), "cpu": cpu,
                        "cpus": os.cpu_count(), "pinning": env.get("BENCH_PINNING", ""),
                        "weir_version": env.get("BENCH_WEIR_VERSION", "")},
        "config": {k.lower(): env.get("BENCH_" + k, "") for k in
                   ("STEPS", "IMPORT_N", "HTTP_N", "APPEND_N", "APPEND_RUNS", "HTTP_BATCH", "HTTP_CONNS", "WEIR_SYNC",
                    "MQTT_PUBS", "MQTT_INFLIGHT", "MQTT_DURATION", "SERIES_RUNS", "WEIR_ARGS")},
        "total_s": int(env.get("BENCH_TOTAL_S", "0") or 0),
        "steps": steps,
        "ratios": {},
        "targets": {},
    }
    # Ratios of the bulk comparison: weir's throughput over the peer's, and
    # the peer's server CPU per reading over weir's (both: above 1 = weir better).
    for wkey, wlabel in (("http_weir_ndjson", "ndjson"), ("http_weir_line", "line")):
        w = res(steps, wkey)
        for pkey, plabel in (("http_redis", "redis"), ("http_influxdb", "influxdb")):
            p = res(steps, pkey)
            if not w or not p:
                continue
            doc["ratios"][f"weir_{wlabel}_over_{plabel}"] = {
                "readings_per_s": ratio(w.get("readings_per_s"), p.get("readings_per_s")),
                "cpu_per_reading_peer_over_weir": ratio(p.get("server_cpu_s_per_million"),
                                                        w.get("server_cpu_s_per_million")),
            }
    sw, si = res(steps, "series_weir"), res(steps, "series_influxdb")
    if sw and si:
        doc["ratios"]["series_influxdb_over_weir"] = {
            "median_s": ratio(si.get("median_s"), sw.get("median_s")),
            "server_cpu_s": ratio(si.get("server_cpu_s_per_query"), sw.get("server_cpu_s_per_query"))}

    t = doc["targets"]
    a_none, a_int = res(steps, "append_none"), res(steps, "append_interval")
    if a_none or a_int:
        vals = [x.get("records_per_s") for x in (a_none, a_int) if x]
        t["append"] = {"target": TARGETS["append"], "met": all(v >= 2e6 for v in vals),
                       "result": "; ".join(f"sync {x.get('sync')}: {fmt(x.get('records_per_s'))}/s"
                                           for x in (a_none, a_int) if x)}
    m = res(steps, "mqtt_interval")
    if m:
        loss = (m.get("sent", 0) - m.get("acked", 0), m.get("stream_records", 0) - m.get("acked", 0))
        t["mqtt"] = {"target": TARGETS["mqtt"],
                     "met": (m.get("acked_per_s") or 0) >= 1e5 and loss == (0, 0),
                     "result": f"{fmt(m.get('acked_per_s'))} acknowledged/s; sent − PUBACKs = {loss[0]}, "
                               f"stored − PUBACKs = {loss[1]}"}
    for key, peer, need in (("http_redis", "redis", 2.0), ("http_influx", "influxdb", 3.0)):
        rs = [(f, doc["ratios"].get(f"weir_{f}_over_{peer}", {}).get("readings_per_s"))
              for f in ("ndjson", "line")]
        rs = [(f, r) for f, r in rs if r is not None]
        if rs:
            t[key] = {"target": TARGETS[key], "met": all(r >= need for _, r in rs),
                      "result": ", ".join(f"{f} {r:.2f}×" for f, r in rs)}
    if sw:
        t["series"] = {"target": TARGETS["series"],
                       "met": num(sw.get("median_s")) is not None and sw["median_s"] < 1.0
                       and (sw.get("records") or 0) >= 10_000_000,
                       "result": f"{fmt(sw.get('median_s'), 3)} s median over {fmt(sw.get('records'))} readings"}
    return doc


def note_of(r, extra=""):
    parts = [p for p in (r.get("note"), extra) if p]
    return "; ".join(parts)


def markdown(doc):
    s, e, c = doc["steps"], doc["environment"], doc["config"]
    out = ["# Ingest benchmark: weir, Redis Streams and InfluxDB", ""]
    out.append(f"Generated {doc['generated_at']} on {e['cpu'] or 'unknown CPU'} ({e['cpus']} CPUs), "
               f"Linux {e['kernel']}; {e['pinning'] or 'no pinning'}; whole run {doc['total_s']} s.  ")
    out.append(f"weir: `{e['weir_version'] or 'not built'}`; weir streams: 4 partitions, sync "
               f"`{c['weir_sync']}` unless said otherwise. Readings: 100 devices, one every 6 s each; "
               "`{\"device\":\"p07\",\"ts\":1732147206000,\"temperature\":21.53,\"humidity\":40.2,\"seq\":1}` "
               "(~83 bytes as NDJSON).")
    out.append("")

    if any(k in s for k in ("append_none", "append_interval", "import")):
        section_1(out, s)
    if any(k.startswith("mqtt_") for k in s):
        section_2(out, s)
    if any(k.startswith("http_") for k in s):
        section_3(out, s, c, doc)
    if any(k.startswith("series_") for k in s):
        section_4(out, s)
    if doc["targets"]:
        out.append("## Targets")
        out.append("")
        out.append("| Target | Result | Met |")
        out.append("|---|---|---|")
        for v in doc["targets"].values():
            out.append(f"| {v['target']} | {v['result']} | {'**yes**' if v['met'] else 'no'} |")
        out.append("")
    return "\n".join(out)


def section_1(out, s):
    out.append("## 1. Store batch API and archived import")
    out.append("")
    out.append("| What | Records | Seconds | Records/s | Notes |")
    out.append("|---|--:|--:|--:|---|")
    for name in ("append_none", "append_interval"):
        r = s.get(name)
        if not r:
            continue
        x = r.get("result")
        if r["status"] != "ok" or not x:
            out.append(f"| append_bench, {name[7:]} | {r['status']} | | | {r['note']} |")
            continue
        sync = x.get("sync")
        runs = x.get("runs_records_per_s") or []
        runs_txt = f"median of {len(runs)} runs ({', '.join(fmt(v) for v in runs)}); " if len(runs) > 1 else ""
        out.append(f"| append_bench, sync {sync}{' (5 ms)' if sync == 'interval' else ''}, "
                   f"{x.get('partitions')} partitions, {x.get('per_call')} per call | "
                   f"{fmt(x.get('records'))} | {fmt(x.get('seconds'), 2)} | **{fmt(x.get('records_per_s'))}** | "
                   f"{runs_txt}{x.get('record_bytes')}-byte records, {fmt(x.get('MB_per_s'), 1)} MB/s, "
                   f"{fmt(x.get('writes'))} writes, {fmt(x.get('fsyncs'))} fsyncs |")
    r = s.get("import")
    if r:
        x = r.get("result")
        if r["status"] == "ok" and x:
            extra = (f"CSV {x.get('file_bytes', 0) / 1e6:,.0f} MB ({x.get('file_bytes', 0) / max(1, x.get('readings', 1)):.1f} "
                     f"B/reading), {x.get('chunks')} chunks, stream holds {fmt(x.get('stream_records'))}; "
                     f"server {fmt(x.get('server_cpu_s_per_million'), 2)} CPU-s per M")
            out.append(f"| `weir import` of a generated CSV, sync {x.get('sync')} | {fmt(x.get('accepted'))} | "
                       f"{fmt(x.get('seconds'), 2)} | **{fmt(x.get('records_per_s'))}** | {note_of(r, extra)} |")
        else:
            out.append(f"| `weir import` | {r['status']} | | | {r['note']} |")
    out.append("")


def section_2(out, s):
    out.append("## 2. MQTT QoS 1 into a durable stream")
    out.append("")
    out.append("| Sync | Publishers (in flight each) | Acknowledged/s | Sent | PUBACKs | Stream records "
               "| Lost | Broker CPU-s per M | Busy: broker / loadgen | Note |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    mqtt = [k for k in ("mqtt_interval", "mqtt_always", "mqtt_none") if k in s]
    for name in mqtt + sorted(k for k in s if k.startswith("mqtt_") and k not in mqtt):
        r = s[name]
        x = r.get("result")
        if r["status"] != "ok" or not x:
            out.append(f"| {name[5:]} | {r['status']} | | | | | | | | {r['note']} |")
            continue
        lost = x.get("sent", 0) - x.get("acked", 0)
        diff = x.get("stream_records", 0) - x.get("acked", 0)
        extra = (f"waited for CPU: broker {pct(x.get('broker_runq_wait_util'))}, loadgen "
                 f"{pct(x.get('loadgen_runq_wait_util'))}; other processes {fmt(x.get('background_cpus'), 2)} CPUs")
        if diff:
            extra += f"; stream records − PUBACKs = {diff}"
        out.append(f"| {x.get('sync')} | {x.get('publishers')} ({x.get('inflight')}) | **{fmt(x.get('acked_per_s'))}** | "
                   f"{fmt(x.get('sent'))} | {fmt(x.get('acked'))} | {fmt(x.get('stream_records'))} | {fmt(lost)} | "
                   f"{fmt(x.get('broker_cpu_s_per_million'), 2)} | {pct(x.get('broker_cpu_util'))} / "
                   f"{pct(x.get('loadgen_cpu_util'))} | {note_of(r, extra)} |")
    out.append("")


def section_3(out, s, c, doc):
    out.append(f"## 3. Bulk ingest: {fmt(int(c['http_n'] or 0))} readings, batches of {c['http_batch']}, "
               f"{c['http_conns']} connections")
    out.append("")
    out.append("| System | Body | Durability when answered | Readings/s | MB/s | Batch p50 / p99 ms "
               "| Server CPU-s per M | Server busy / waited | Client busy | Stored | Note |")
    out.append("|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
    for key, system, body in HTTP_TARGETS:
        r = s.get(key)
        if not r:
            continue
        x = r.get("result")
        if r["status"] != "ok" or not x:
            out.append(f"| {system} | {body} | | {r['status']} | | | | | | | {r['note']} |")
            continue
        extra = f"other processes {fmt(x.get('background_cpus'), 2)} CPUs"
        if x.get("version"):
            extra = f"{x['version']}; {extra}"
        out.append(f"| {system} | {body} ({x.get('bytes_per_reading')} B/reading) | {x.get('durability')} | "
                   f"**{fmt(x.get('readings_per_s'))}** | {fmt(x.get('MB_per_s'), 1)} | "
                   f"{fmt(x.get('batch_p50_ms'), 1)} / {fmt(x.get('batch_p99_ms'), 1)} | "
                   f"{fmt(x.get('server_cpu_s_per_million'), 2)} | {pct(x.get('server_cpu_util'))} / "
                   f"{pct(x.get('server_runq_wait_util'))} | {pct(x.get('client_cpu_util'))} | "
                   f"{fmt(x.get('stored'))} | {note_of(r, extra)} |")
    out.append("")
    rat = {k: v for k, v in doc["ratios"].items() if k.startswith("weir_")}
    if rat:
        out.append("| weir over peer | Readings/s ratio | Server CPU per reading, peer / weir |")
        out.append("|---|--:|--:|")
        for k, v in rat.items():
            label = k.replace("weir_", "weir ", 1).replace("_over_", " / ")
            out.append(f"| {label} | **{fmt(v['readings_per_s'], 2)}** | {fmt(v['cpu_per_reading_peer_over_weir'], 2)} |")
        out.append("")


def section_4(out, s):
    out.append("## 4. avg(temperature) per minute over the stored readings")
    out.append("")
    out.append("| System | Readings | Buckets | Median s | Runs s | Server CPU-s per query | Note |")
    out.append("|---|--:|--:|--:|---|--:|---|")
    for key, system in (("series_weir", "weir `GET .../series?field=temperature&every=1m&agg=avg`"),
                        ("series_influxdb", "InfluxDB `SELECT mean(temperature) ... GROUP BY time(1m)`")):
        r = s.get(key)
        if not r:
            continue
        x = r.get("result")
        if r["status"] != "ok" or not x:
            out.append(f"| {system} | {r['status']} | | | | | {r['note']} |")
            continue
        extra = ""
        same = x.get("same_as_weir")
        if same:
            extra = ("same buckets and values as weir" if same.get("equal") else
                     f"differs from weir: {same.get('common')} common buckets of {same.get('buckets_here')} / "
                     f"{same.get('buckets_weir')}, max |Δ| {same.get('max_abs_diff')}")
        if x.get("readings_counted") is not None and x["readings_counted"] != x.get("records"):
            extra = f"{extra}; buckets count {fmt(x['readings_counted'])} readings".strip("; ")
        out.append(f"| {system} | {fmt(x.get('records'))} | {fmt(x.get('buckets'))} | **{fmt(x.get('median_s'), 3)}** | "
                   f"{', '.join(f'{v:.3f}' for v in x.get('runs_s', []))} | "
                   f"{fmt(x.get('server_cpu_s_per_query'), 2)} | {note_of(r, extra)} |")
    out.append("")


def main():
    raw_dir, out_json, out_md = sys.argv[1:4]
    doc = build(load(raw_dir))
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(out_md, "w") as f:
        f.write(markdown(doc))


if __name__ == "__main__":
    main()
