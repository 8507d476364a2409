// clock.js -- CLOCK_REALTIME nanoseconds in Node.js, comparable with weir's
// and the probe's clock_gettime(CLOCK_REALTIME) stamps (the latency bench's
// T2/T3/T4 of the Node-RED peer loop).
//
// Date.now() is whole milliseconds; process.hrtime.bigint() is nanoseconds
// but CLOCK_MONOTONIC. We calibrate once at start: spin until Date.now()
// ticks to a new millisecond and read hrtime right there; the realtime of
// that instant is tick*1e6 ns, so offset = tick*1e6 - hrtime. The spin reads
// both clocks back to back (well under 1 us apart) and catches the edge
// within one iteration; of 7 edges the median offset is kept (a spin that
// was preempted at the edge gives an outlier). Drift after that is
// CLOCK_MONOTONIC against CLOCK_REALTIME (NTP slew, a few ppm: microseconds
// over a benchmark run).
//
// performance.timeOrigin + performance.now() (ms as a double, 0.24 us
// resolution at today's epoch) is the other candidate. Measured on Node 20:
// during the first ~100 ms of the process it reads 1.2-1.7 ms ahead of the
// calibrated hrtime, later about 30 us ahead. clockcheck.py (UDP pings both
// ways against Python's time.time_ns) bounds both errors only to within the
// loopback one-way delay, about +-25 us. We use hrtime, calibrated.
'use strict';

function calibrate(edges) {
  const offs = [];
  for (let i = 0; i < edges; i++) {
    let d0 = Date.now(), d, h;
    do { h = process.hrtime.bigint(); d = Date.now(); } while (d === d0);
    offs.push(BigInt(d) * 1000000n - h);
  }
  offs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return offs[offs.length >> 1];
}

const offset = calibrate(7);

// Realtime nanoseconds as a BigInt: epoch nanoseconds (~1.8e18) are above
// 2^53, where a Number would round them to 256 ns. String(nowNs()) is the
// JSON integer.
function nowNs() { return process.hrtime.bigint() + offset; }

function originNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

module.exports = { nowNs, originNs, offset };
