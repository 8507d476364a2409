#!/usr/bin/env python3
"""Turns bench/out/latency-{weir,peer}-<scenario>.json into a Markdown report
(the methodology's table shape: min / avg / p95 / p99 / max / std in ms)."""
import json
import os
import sys

out, scenarios = sys.argv[1], sys.argv[2:]
ROWS = [("weir", "direct", "LPS"), ("weir", "push", "DPC"), ("weir", "push", "DCD"),
        ("weir", "push", "DDC"), ("weir", "push", "DCS"), ("weir", "push", "LCDC"),
        ("weir", "push", "LPDS"), ("weir", "poll", "DDC"), ("weir", "poll", "LPDS"),
        ("peer", "direct", "LPS"), ("peer", "loop", "DPC"), ("peer", "loop", "DCD"),
        ("peer", "loop", "DDC"), ("peer", "loop", "DCS"), ("peer", "loop", "LCDC"),
        ("peer", "loop", "LPDS")]
NAMES = {"weir": "weir", "peer": "Mosquitto + PostgreSQL"}
for sc in scenarios:
    res = {t: json.load(open(os.path.join(out, "latency-%s-%s.json" % (t, sc))))
           for t in ("weir", "peer")}
    o = res["weir"]["options"]
    print("### %s: %d devices x %g msg/s x %g s\n" % (sc, o["devices"], o["rate"], o["duration_s"]))
    print("| system | path | metric | n | min | avg | p95 | p99 | max | std |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t, path, m in ROWS:
        p = res[t]["paths"].get(path)
        if not p:
            continue
        s = p["metrics"][m]
        print("| %s | %s | %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |"
              % (NAMES[t], path, m, s["n"], s["min"], s["avg"], s["p95"], s["p99"], s["max"],
                 s["std"]))
    sent = {t: res[t]["sent"] for t in res}
    print("\nsent: weir %d, peer %d; received: %s\n" % (
        sent["weir"], sent["peer"],
        ", ".join("%s %s %d" % (NAMES[t], k, v["received"])
                  for t in res for k, v in res[t]["paths"].items())))
    wl = res["weir"]["paths"]["direct"]["metrics"]["LPS"]["p99"]
    pl = res["peer"]["paths"]["direct"]["metrics"]["LPS"]["p99"]
    wd = res["weir"]["paths"]["push"]["metrics"]["LPDS"]["p99"]
    pd = res["peer"]["paths"]["loop"]["metrics"]["LPDS"]["p99"]
    print("p99: LPS weir %.3f ms vs Mosquitto %.3f ms (x%.1f); LPDS weir push %.3f ms vs peer "
          "loop %.3f ms (x%.1f)\n" % (wl, pl, pl / wl if wl else 0, wd, pd, pd / wd if wd else 0))
