#!/usr/bin/env python3
"""bench/rules/report.py -- turns bench/rules/run.sh's raw JSON lines into
bench/out/rules.json and bench/out/rules.md, with the issue's targets
checked.

usage: report.py RAW_JSONL OUT_JSON OUT_MD

Raw lines: {"part": "engine"|"runtime"|"e2e", "result": {...}} where result
is engine_bench's, runtime.py's (plus node_rss_kib) or {"target", "run"}
with e2e's line. Settings arrive in BENCH_* environment variables. Standard
library only.
"""
import datetime
import json
import os
import platform
import sys


def load(path):
    out = {"engine": [], "runtime": [], "e2e": []}
    if not os.path.exists(path):
        return out
    for line in open(path):
        line = line.strip()
        if line:
            d = json.loads(line)
            out[d["part"]].append(d["result"])
    return out


def fmt(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float) and nd:
        return "%.*f" % (nd, v)
    return "{:,}".format(int(round(v)))


def keeps_up(run):
    """Sustained: every result arrived, none later than one window advance
    (1 s: a slower rule falls further behind with every window), and the
    load generator reached the rate."""
    lat = run.get("lat_ms") or {}
    return (run.get("missing") == 0 and lat.get("p99", 1e9) < 1000.0
            and run.get("sent_per_s", 0) >= 0.95 * run.get("rate", 0))


def ok_run(run):
    lat = run.get("lat_ms") or {}
    return (run.get("missing") == 0 and "p99" in lat and lat["p99"] < 5.0
            and run.get("sent_per_s", 0) >= 0.95 * run.get("rate", 0))


def main():
    raw, out_json, out_md = sys.argv[1:4]
    d = load(raw)
    env = {k[6:].lower(): v for k, v in os.environ.items() if k.startswith("BENCH_")}
    md = ["# bench/rules: continuous rules", ""]
    md.append("%s, %s, %d CPUs; %s." % (datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), platform.machine(), os.cpu_count() or 0, env.get("pinning", "")))
    md.append("weir %s; %s; Node-RED %s on Node.js %s. %s devices." % (
        env.get("weir_version", "?"), env.get("mosquitto_version", "?"),
        env.get("nodered_version", "?"), env.get("node_version", "?"), env.get("devices", "?")))
    md.append("")
    md.append("Rule: `SELECT device, avg(temperature) AS t_avg FROM readings GROUP BY device, "
              "HOPPING(SIZE 5s, ADVANCE 1s) EMIT TO 'mqtt:alerts/{device}/climate'`.")
    summary = {"settings": env}

    def scaling(rows, title, note):
        if not rows:
            return
        md.extend(["", "## " + title, "", note, "",
                   "| rules | readings/s | rule pushes/s | readings/s vs 1 rule | state bytes per rule | %s |"
                   % ("RSS KiB per rule" if title.startswith("Engine") else "node RSS KiB"),
                   "|---:|---:|---:|---:|---:|---:|"])
        base = next((r["readings_per_s"] for r in rows if r.get("rules") == 1 and "readings_per_s" in r), None)
        for r in rows:
            if "readings_per_s" not in r:
                md.append("| %s | failed: %s | | | | |" % (r.get("rules"), r.get("error")))
                continue
            ratio = r["readings_per_s"] / base if base else None
            extra = r.get("rss_kib_per_rule") if title.startswith("Engine") else r.get("node_rss_kib")
            md.append("| %d | %s | %s | %s | %s | %s |" % (
                r["rules"], fmt(r["readings_per_s"]), fmt(r["pushes_per_s"]),
                "%.3f" % ratio if ratio else "–", fmt(r.get("state_bytes_per_rule")),
                fmt(extra, 1) if isinstance(extra, float) else fmt(extra)))

    scaling(d["engine"], "Engine only (one core)",
            "`engine_bench`: the compiled rule fed pre-decoded readings, 1 ms of event time "
            "apart; N rules all see every reading. State bytes per rule as the engine "
            "accounts them (every device with 5 open windows).")
    scaling(d["runtime"], "Full runtime over a stored stream (one core)",
            "`runtime.py`: a weir node replays a stored stream (1 partition) through N "
            "running rules from their checkpoints: read, decode once, push to every rule, "
            "MQTT output (no subscriber). Time from the start until every rule has read "
            "every reading (polled every 20 ms).")
    summary["engine"], summary["runtime"] = d["engine"], d["runtime"]

    by_target = {}
    for r in d["e2e"]:
        by_target.setdefault(r["target"], {})[r["run"].get("rate")] = r["run"]
    summary["e2e"] = by_target
    if by_target:
        rates = sorted({rate for t in by_target.values() for rate in t if rate})
        targets = [t for t in ("weir", "nodered", "weir_fsync") if t in by_target]
        md.extend(["", "## End to end: publisher -> broker -> rule -> MQTT subscriber", "",
                   "`e2e`: readings at a paced rate, QoS 0; latency = result received minus the "
                   "send of the reading that closed its window (%s s measured after %s s warm-up, "
                   "%s s drain; one result per device per second). Missing = results that did "
                   "not arrive within the drain. weir: stream with `sync: none`, rule inside the "
                   "node; weir_fsync: the same with the stream's default `sync: always` (every "
                   "commit fsynced before the rule sees it). Node-RED: Mosquitto + Node-RED with the rule as a function node "
                   "(bench/rules/nodered/flows.json)." % (env.get("e2e_duration", "?"),
                                                         env.get("e2e_warmup", "?"),
                                                         env.get("e2e_drain", "?")), ""])
        head = "| readings/s |" + "".join(" %s p50 ms | %s p99 ms | %s missing |" % (t, t, t) for t in targets)
        md.extend([head, "|---:|" + "---:|" * (3 * len(targets))])
        slow = []
        for rate in rates:
            row = "| %s |" % fmt(rate)
            for t in targets:
                run = by_target[t].get(rate) or {}
                if run.get("sent_per_s") and run["sent_per_s"] < 0.95 * rate:
                    slow.append("%s at %s/s: the load generator sent only %s/s" % (
                        t, fmt(rate), fmt(run["sent_per_s"])))
            for t in targets:
                run = by_target[t].get(rate)
                if not run:
                    row += " – | – | – |"
                    continue
                lat = run.get("lat_ms") or {}
                row += " %s | %s | %s of %s |" % (
                    "%.2f" % lat["p50"] if "p50" in lat else "–",
                    "%.2f" % lat["p99"] if "p99" in lat else "–",
                    fmt(run.get("missing")), fmt(run.get("expected")))
            md.append(row)
        if slow:
            md.extend(["", "Rates not reached: " + "; ".join(slow) + "."])
        best, sustained = {}, {}
        for t in targets:
            passing = [rate for rate, run in by_target[t].items() if ok_run(run)]
            best[t] = max(passing) if passing else None
            no_loss = [rate for rate, run in by_target[t].items() if keeps_up(run)]
            sustained[t] = max(no_loss) if no_loss else None
        summary["highest_ok_rate"] = best
        summary["highest_sustained_rate"] = sustained
        md.append("")
        for t in targets:
            top = lambda v: v is not None and v == max(by_target[t])  # noqa: E731
            md.append("- **%s**: highest rate with no loss and p99 < 5 ms: %s readings/s%s; "
                      "sustained (no loss, p99 < 1 s): %s readings/s%s" % (
                          t, fmt(best[t]), " (the highest rate tried)" if top(best[t]) else "",
                          fmt(sustained[t]), " (the highest rate tried)" if top(sustained[t]) else ""))

    # ---- targets of the issue
    md.extend(["", "## Targets", ""])
    checks = []
    eng1 = next((r for r in d["engine"] if r.get("rules") == 1), None)
    eng10 = next((r for r in d["engine"] if r.get("rules") == 10), None)
    rt1 = next((r for r in d["runtime"] if r.get("rules") == 1 and "readings_per_s" in r), None)
    rt10 = next((r for r in d["runtime"] if r.get("rules") == 10 and "readings_per_s" in r), None)
    if eng1 or rt1:
        e = eng1["readings_per_s"] if eng1 else None
        r = rt1["readings_per_s"] if rt1 else None
        checks.append((">= 1,000,000 readings/s per core, one rule over stored readings",
                       "engine only %s/s; full runtime over the stored stream %s/s" % (fmt(e), fmt(r)),
                       "met (engine), %s (runtime)" % ("met" if r and r >= 1e6 else "not met")
                       if e and e >= 1e6 else "not met"))
    if (eng1 and eng10) or (rt1 and rt10):
        parts, verdicts = [], []
        for name, a, b in (("engine", eng1, eng10), ("runtime", rt1, rt10)):
            if a and b:
                drop = 1 - b["pushes_per_s"] / a["pushes_per_s"]
                parts.append("%s: rule throughput (rows pushed through rules per second) %+.0f %%, "
                             "stream readings/s %+.0f %%" % (
                                 name, -100 * drop,
                                 100 * (b["readings_per_s"] / a["readings_per_s"] - 1)))
                verdicts.append("%s %s" % (name, "met" if drop < 0.10 else "not met"))
        checks.append(("< 10 % throughput loss from 1 to 10 rules (per-rule work: each rule "
                       "still sees every reading)", "; ".join(parts), ", ".join(verdicts)))
    w = by_target.get("weir", {})
    n = by_target.get("nodered", {})
    if 10000 in w and (w[10000].get("lat_ms") or {}).get("p99") is not None:
        p = w[10000]["lat_ms"]["p99"]
        checks.append(("end-to-end p99 < 2 ms at 10,000 readings/s", "p99 %.2f ms" % p,
                       "met" if p < 2 and w[10000]["missing"] == 0 else "not met"))
    if by_target.get("weir") and by_target.get("nodered"):
        bw = summary["highest_sustained_rate"].get("weir")
        bn = summary["highest_sustained_rate"].get("nodered")
        if bw and bn:
            lower = bw == max(w)
            checks.append((">= 10x Node-RED's sustained rate (no loss, p99 < 1 s)",
                           "%s vs %s readings/s: %.1fx%s" % (
                               fmt(bw), fmt(bn), bw / bn,
                               " (weir's is the highest rate tried: a lower bound)" if lower else ""),
                           "met" if bw / bn >= 10 else ("not shown" if lower else "not met")))
        pw = (w.get(5000, {}).get("lat_ms") or {}).get("p99")
        pn = (n.get(5000, {}).get("lat_ms") or {}).get("p99")
        if pw and pn:
            checks.append(("p99 at 5,000 readings/s >= 20x lower than Node-RED's",
                           "%.2f ms vs %.2f ms: %.1fx" % (pw, pn, pn / pw),
                           "met" if pn / pw >= 20 else "not met"))
    md.extend(["| target | measured | verdict |", "|---|---|---|"])
    for c in checks:
        md.append("| %s | %s | %s |" % c)
    summary["targets"] = [{"target": a, "measured": b, "verdict": c} for a, b, c in checks]
    with open(out_json, "w") as f:
        json.dump(summary, f, indent=1)
    with open(out_md, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
