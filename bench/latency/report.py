#!/usr/bin/env python3
"""Turns bench/out/latency-<target>-<scenario>.json into a Markdown report
(the methodology's table shape: min / avg / p95 / p99 / max / std in ms) and
a check against the issue's targets.

Usage: report.py OUT_DIR "PEERS" SCENARIO...   (PEERS: "nodered python")"""
import json
import os
import sys

out, peers, scenarios = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
WEIR_ROWS = [("direct", "LPS"), ("push", "DPC"), ("push", "DCD"), ("push", "DDC"),
             ("push", "DCS"), ("push", "LCDC"), ("push", "LPDS"), ("poll", "DDC"),
             ("poll", "LPDS")]
PEER_ROWS = [("direct", "LPS"), ("loop", "DPC"), ("loop", "DCD"), ("loop", "DDC"),
             ("loop", "DCS"), ("loop", "LCDC"), ("loop", "LPDS")]
NAMES = {"weir": "weir", "nodered": "Mosquitto + Node-RED + PostgreSQL",
         "python": "Mosquitto + Python + PostgreSQL"}

try:
    run = json.load(open(os.path.join(out, "latency-run.json")))
    print("%s; %s; load average %s at start, %s at end\n" % (
        run["date"], run["pinning"], run["load_start"], run["load_end"]))
except (OSError, ValueError):
    pass
checks = []
for sc in scenarios:
    res = {t: json.load(open(os.path.join(out, "latency-%s-%s.json" % (t, sc))))
           for t in ["weir"] + peers}
    o = res["weir"]["options"]
    print("### %s: %d devices x %g msg/s x %g s\n" % (sc, o["devices"], o["rate"], o["duration_s"]))
    print("| system | path | metric | n | min | avg | p95 | p99 | max | std |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in res:
        for path, m in (WEIR_ROWS if t == "weir" else PEER_ROWS):
            p = res[t]["paths"].get(path)
            if not p:
                continue
            s = p["metrics"][m]
            print("| %s | %s | %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |"
                  % (NAMES[t], path, m, s["n"], s["min"], s["avg"], s["p95"], s["p99"],
                     s["max"], s["std"]))
    print("\nsent / received: " + "; ".join(
        "%s sent %d, %s" % (NAMES[t], res[t]["sent"], ", ".join(
            "%s %d" % (k, v["received"]) for k, v in res[t]["paths"].items()))
        for t in res) + "\n")
    wl = res["weir"]["paths"]["direct"]["metrics"]["LPS"]["p99"]
    wd = res["weir"]["paths"]["push"]["metrics"]["LPDS"]["p99"]
    checks.append((sc, "LPS p99 < 1 ms", wl < 1, "%.3f ms" % wl))
    checks.append((sc, "LPDS (push) p99 < 5 ms", wd < 5, "%.3f ms" % wd))
    for t in peers:
        pl = res[t]["paths"]["direct"]["metrics"]["LPS"]["p99"]
        loop = res[t]["paths"].get("loop", {})
        pd = loop.get("metrics", {}).get("LPDS", {}).get("p99", 0)
        lost = res[t]["sent"] - loop.get("received", 0)
        checks.append((sc, "LPS >= 20x lower than %s's Mosquitto" % t, pl >= 20 * wl,
                       "x%.1f (%.3f vs %.3f ms)" % (pl / wl if wl else 0, pl, wl)))
        checks.append((sc, "LPDS >= 20x lower than the %s loop" % t, pd >= 20 * wd,
                       "x%.1f (%.3f vs %.3f ms)%s" % (
                           pd / wd if wd else 0, pd, wd,
                           "; %d readings never came back" % lost if lost else "")))
print("### Against the targets\n")
print("| scenario | target | | value |")
print("|---|---|---|---|")
for sc, what, ok, val in checks:
    print("| %s | %s | %s | %s |" % (sc, what, "met" if ok else "**not met**", val))
