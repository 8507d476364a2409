#!/usr/bin/env python3
"""Checks the Node-RED peer's clock (bench/latency/nodered/clock.js) against
CLOCK_REALTIME (Python's time.time_ns, the clock weir and the probe use):
UDP pings on loopback both ways, see nodered/clockcheck.js. Prints, for each
Node.js stamp, the interval that must hold its error (us)."""
import os
import socket
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
p = socket.socket(); p.bind(("127.0.0.1", 0)); port = p.getsockname()[1]; p.close()
node = subprocess.Popen(["node", os.path.join(here, "nodered", "clockcheck.js"), str(port)],
                        stdout=subprocess.PIPE, text=True)
node.stdout.readline()
fwd = {"hrtime": [], "origin": []}
back = {"hrtime": [], "origin": []}
try:
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2000):
        t = time.time_ns()
        s.sendto(str(t).encode(), ("127.0.0.1", port))
        m = s.recv(200)
        r = time.time_ns()
        da, db, a2, b2 = (int(x) for x in m.split())
        fwd["hrtime"].append(da); fwd["origin"].append(db)
        back["hrtime"].append(r - a2); back["origin"].append(r - b2)
        time.sleep(0.0005)
finally:
    node.kill()
for k in ("hrtime", "origin"):
    lo, hi = -min(fwd[k]) / 1e3, min(back[k]) / 1e3
    print("%-7s error in [%+.1f, %+.1f] us" % (k, lo, hi))
