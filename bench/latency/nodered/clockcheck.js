// clockcheck.js -- how close are clock.js's stamps to CLOCK_REALTIME?
// Pings over UDP on loopback with bench/latency/clockcheck.py: Python
// (time.time_ns) sends its stamp, Node stamps the receipt and replies with
// its send stamp, Python stamps that receipt. With e = Node's error, the
// minimum one-way differences give  -min(node_recv - py_send) <= e <=
// min(py_recv - node_send). Prints that interval for nowNs() (hrtime
// calibrated on Date.now) and originNs() (performance.timeOrigin + now()).
// Usage: node clockcheck.js PORT  (clockcheck.py starts it)
'use strict';
const dgram = require('dgram');
const clock = require('./clock.js');
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  const a = clock.nowNs(), b = clock.originNs();
  const t = BigInt(m.toString());
  const a2 = clock.nowNs(), b2 = clock.originNs();
  s.send(`${a - t} ${b - t} ${a2} ${b2}`, r.port, r.address);
});
s.bind(parseInt(process.argv[2], 10), '127.0.0.1', () => console.log('ready'));
