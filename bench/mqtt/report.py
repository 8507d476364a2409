#!/usr/bin/env python3
"""bench/mqtt/report.py -- turns the raw per-run files of bench/mqtt/run.sh
into bench/out/mqtt.json and bench/out/mqtt.md.

usage: report.py RAW_DIR OUT_JSON OUT_MD

Each raw file is {"target", "scenario", "status", "note", "result"} where
result is the load generator's JSON (or, for idle_conns, the script's). The
run's settings arrive in BENCH_* environment variables. Standard library
only, so that it runs wherever the benchmark does.
"""
import datetime
import glob
import json
import math
import os
import platform
import sys

BROKERS = ["mosquitto", "weir"]

SCENARIOS = {
    "fanin_qos0": "QoS 0 fan-in, {pubs} publishers -> 1 wildcard subscriber",
    "fanin_qos0_tls": "QoS 0 fan-in over TLS 1.3, {pubs} publishers -> 1 wildcard subscriber",
    "fanin_qos1": "QoS 1 fan-in, {pubs} publishers -> 1 wildcard subscriber",
    "fanout_qos0": "QoS 0 fan-out, 1 publisher -> {subs} subscribers",
    "latency_qos0": "QoS 0 latency at {rate} msg/s, 1 publisher -> 1 subscriber",
    "idle_conns": "{conns} idle connections",
}

# Metrics compared between brokers: key, label, which way is better.
TRAFFIC_METRICS = [
    ("delivered_per_s", "delivered msg/s", "higher"),
    ("loss", "lost messages", "lower"),
    ("lat_p50_us", "latency p50 (us)", "lower"),
    ("lat_p99_us", "latency p99 (us)", "lower"),
    ("lat_p999_us", "latency p99.9 (us)", "lower"),
    ("broker_cpu_s_per_million", "broker CPU-s per million delivered", "lower"),
    ("broker_hwm_kib", "broker peak RSS (KiB)", "lower"),
]
IDLE_METRICS = [
    ("broker_rss_kib", "broker RSS with connections (KiB)", "lower"),
    ("kib_per_conn", "broker KiB per connection", "lower"),
    ("broker_hwm_kib", "broker peak RSS (KiB)", "lower"),
    ("broker_cpu_util", "broker CPU share while idle", "lower"),
]


def num(v):
    return v if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def metrics_of(scenario, result):
    """The compared metrics of one run, derived from its raw result."""
    if not result:
        return {}
    if scenario == "idle_conns":
        m = {k: num(result.get(k)) for k in ("broker_rss_kib", "broker_hwm_kib", "broker_cpu_util")}
        before, after, ok = (num(result.get("broker_rss_before_kib")), m["broker_rss_kib"],
                             num(result.get("conns_ok")))
        m["kib_per_conn"] = (after - before) / ok if before is not None and after is not None and ok else None
        m["conns_ok"] = ok
        m["broker_rss_before_kib"] = before
        m["connect_s"] = num(result.get("connect_s"))
        return m
    keys = [k for k, _, _ in TRAFFIC_METRICS] + ["loss_pct", "broker_cpu_util", "loadgen_cpu_util",
                                                 "sent", "received", "pacer_lag_p99_us",
                                                 "broker_runq_wait_util", "loadgen_runq_wait_util",
                                                 "background_cpus"]
    m = {k: num(result.get(k)) for k in keys}
    if scenario != "latency_qos0":
        for k in ("lat_p50_us", "lat_p99_us", "lat_p999_us", "pacer_lag_p99_us"):
            m.pop(k, None)
    return m


def ratio(a, b):
    if a is None or b is None or b == 0:
        return 1.0 if a == 0 and b == 0 else None
    return a / b


def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits:
        return f"{float(v):,.{digits}f}"
    return f"{round(v):,}"


def mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def pct(v):
    return "–" if v is None else f"{100 * v:.0f}%"


def main():
    raw_dir, out_json, out_md = sys.argv[1:4]
    env = os.environ
    params = dict(pubs=env.get("BENCH_FANIN_PUBS", "8"), subs=env.get("BENCH_FANOUT_SUBS", "50"),
                  rate=env.get("BENCH_LATENCY_RATE", "10000"), conns=env.get("BENCH_IDLE_CONNS", "10000"))
    runs = {}
    for path in sorted(glob.glob(os.path.join(raw_dir, "*.json"))):
        with open(path) as f:
            r = json.load(f)
        runs.setdefault(r["scenario"], {})[r["target"]] = r

    order = [s for s in env.get("BENCH_SCENARIOS", " ".join(SCENARIOS)).split() if s in runs]
    order += [s for s in runs if s not in order]
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass

    doc = {
        "suite": "mqtt",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {
            "host": platform.node(), "kernel": platform.release(), "cpu": cpu,
            "cpus": os.cpu_count(), "pinning": env.get("BENCH_PINNING", ""),
            "mosquitto_version": env.get("BENCH_MOSQUITTO_VERSION", ""),
            "weir_version": env.get("BENCH_WEIR_VERSION", ""),
        },
        "config": {
            "duration_s": float(env.get("BENCH_DURATION", "10")),
            "warmup_s": float(env.get("BENCH_WARMUP", "1")),
            "fanin_publishers": int(params["pubs"]), "fanout_subscribers": int(params["subs"]),
            "latency_rate": float(params["rate"]), "idle_conns": int(params["conns"]),
            "targets": env.get("BENCH_TARGETS", "").split(),
            "weir_args": env.get("BENCH_WEIR_ARGS", ""),
            "protocol": "MQTT 3.1.1", "address": "127.0.0.1",
        },
        "scenarios": {},
    }
    for s in order:
        entry = {"description": SCENARIOS.get(s, s).format(**params), "brokers": {}, "ratios": {}}
        for b, r in runs[s].items():
            entry["brokers"][b] = {"status": r["status"], "note": r["note"],
                                   "metrics": metrics_of(s, r.get("result")) if r["status"] == "ok" else {},
                                   "raw": r.get("result")}
        mlist = IDLE_METRICS if s == "idle_conns" else TRAFFIC_METRICS
        w = entry["brokers"].get("weir", {}).get("metrics", {})
        m = entry["brokers"].get("mosquitto", {}).get("metrics", {})
        for k, _, better in mlist:
            if k in m or k in w:
                entry["ratios"][k] = {"weir_over_mosquitto": ratio(w.get(k), m.get(k)), "better": better}
        doc["scenarios"][s] = entry

    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(out_md, "w") as f:
        f.write(markdown(doc))


def markdown(doc):
    e, c = doc["environment"], doc["config"]
    out = ["# MQTT broker benchmark: weir and Mosquitto", ""]
    out.append(f"Generated {doc['generated_at']} on {e['cpu'] or 'unknown CPU'} ({e['cpus']} CPUs), "
               f"Linux {e['kernel']}; {e['pinning'] or 'no pinning'}.  ")
    out.append(f"Each traffic scenario: {c['warmup_s']:g} s warm-up, {c['duration_s']:g} s measured; "
               f"~120-byte JSON readings; {c['protocol']} on {c['address']}.  ")
    out.append(f"Mosquitto: `{e['mosquitto_version'] or 'unknown'}`; weir: `{e['weir_version'] or 'not built'}`.")
    out.append("")
    out.append("## Throughput, loss and latency")
    out.append("")
    out.append("| Scenario | Broker | Delivered msg/s | Lost (of expected) | p50 µs | p99 µs | p99.9 µs "
               "| Broker CPU-s per M msgs | Peak RSS MiB | Busy: broker / loadgen | Note |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    idle = None
    for s, entry in doc["scenarios"].items():
        if s == "idle_conns":
            idle = entry
            continue
        first = True
        for b in BROKERS + [x for x in entry["brokers"] if x not in BROKERS]:
            if b not in entry["brokers"]:
                continue
            r = entry["brokers"][b]
            label = entry["description"] if first else ""
            first = False
            if r["status"] != "ok":
                out.append(f"| {label} | {b} | {r['status']} | | | | | | | | {r['note']} |")
                continue
            m = r["metrics"]
            loss = "–" if m.get("loss") is None else f"{fmt(m['loss'])} ({m.get('loss_pct') or 0:.2f}%)"
            notes = [r["note"]] if r["note"] else []
            if m.get("pacer_lag_p99_us") is not None:
                notes.append(f"pacer lag p99 {m['pacer_lag_p99_us']:.0f} µs")
            if m.get("background_cpus") is not None:
                notes.append(f"waited for CPU: broker {pct(m.get('broker_runq_wait_util'))}, "
                             f"loadgen {pct(m.get('loadgen_runq_wait_util'))}; "
                             f"other processes {m['background_cpus']:.2f} CPUs")
            note = "; ".join(notes)
            out.append(f"| {label} | {b} | {fmt(m.get('delivered_per_s'))} | {loss} | "
                       f"{fmt(m.get('lat_p50_us'), 1)} | {fmt(m.get('lat_p99_us'), 1)} | "
                       f"{fmt(m.get('lat_p999_us'), 1)} | {fmt(m.get('broker_cpu_s_per_million'), 2)} | "
                       f"{mib(m.get('broker_hwm_kib'))} | "
                       f"{pct(m.get('broker_cpu_util'))} / {pct(m.get('loadgen_cpu_util'))} | {note} |")
    if idle:
        out += ["", f"## {idle['description'][0].upper()}{idle['description'][1:]}", ""]
        out.append("| Broker | Connected | Connect time s | RSS before MiB | RSS with connections MiB "
                   "| KiB per connection | Peak RSS MiB | Broker CPU while idle | Note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|---|")
        for b, r in idle["brokers"].items():
            if r["status"] != "ok":
                out.append(f"| {b} | {r['status']} | | | | | | | {r['note']} |")
                continue
            m = r["metrics"]
            out.append(f"| {b} | {fmt(m.get('conns_ok'))} | {fmt(m.get('connect_s'), 2)} | "
                       f"{mib(m.get('broker_rss_before_kib'))} | "
                       f"{mib(m.get('broker_rss_kib'))} | {fmt(m.get('kib_per_conn'), 2)} | "
                       f"{mib(m.get('broker_hwm_kib'))} | {pct(m.get('broker_cpu_util'))} | {r['note']} |")
    out += ["", "## weir / Mosquitto", "",
            "Ratio of weir's figure to Mosquitto's; the last column says which direction is better.", "",
            "| Scenario | Metric | weir | Mosquitto | weir / Mosquitto | Better |",
            "|---|---|--:|--:|--:|---|"]
    for s, entry in doc["scenarios"].items():
        mlist = IDLE_METRICS if s == "idle_conns" else TRAFFIC_METRICS
        w = entry["brokers"].get("weir", {})
        m = entry["brokers"].get("mosquitto", {})
        for k, label, better in mlist:
            if k not in entry["ratios"]:
                continue
            wv = w.get("metrics", {}).get(k)
            mv = m.get("metrics", {}).get(k)
            rv = entry["ratios"][k]["weir_over_mosquitto"]
            digits = 2 if k in ("broker_cpu_s_per_million", "kib_per_conn", "broker_cpu_util") else \
                1 if k.startswith("lat_") else 0
            wtxt = fmt(wv, digits) if w.get("status") == "ok" else "not available"
            out.append(f"| {s} | {label} | {wtxt} | {fmt(mv, digits)} | "
                       f"{'n/a' if rv is None else f'{rv:.2f}'} | {better} |")
    out += ["", "How to read these numbers: bench/README.md.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
