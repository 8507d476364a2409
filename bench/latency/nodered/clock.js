// clock.js -- CLOCK_REALTIME nanoseconds in Node.js, comparable with weir's
// and the probe's clock_gettime(CLOCK_REALTIME) stamps (the latency bench's
// T2/T3/T4 of the Node-RED peer loop).
//
// Date.now() is whole milliseconds; process.hrtime.bigint() is nanoseconds
// but CLOCK_MONOTONIC. We calibrate once at start: spin until Date.now()
// ticks to a new millisecond and read hrtime right there; the realtime of
// that instant is tick*1e6 ns, so offset = tick*1e6 - hrtime. The spin reads
// both clocks back to back (well under 1 us apart), and the tick edge is
// caught within one spin iteration, so the offset is exact to about a
// microsecond; the smallest of a few edges is kept (a preempted spin only
// makes an edge look late, i.e. the offset too small... or large: we keep
// the median). Drift after that is CLOCK_MONOTONIC vs CLOCK_REALTIME (NTP
// slew, a few ppm: microseconds over a benchmark run).
//
// performance.timeOrigin + performance.now() is the other candidate: a
// double of milliseconds (0.24 us resolution at today's epoch), but
// timeOrigin is read once at process start at microsecond precision and
// then advanced with the monotonic clock, so it has the same drift and no
// better start; clockcheck.js compares both against Python's time.time_ns().
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

// Realtime nanoseconds as a Number (exact below 2^53 ns... not: epoch ns is
// ~1.8e18 > 2^53, so a Number would round to 256 ns). Return a BigInt and let
// callers serialise it as a JSON integer string-free (see jsonNs).
function nowNs() { return process.hrtime.bigint() + offset; }

function originNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

module.exports = { nowNs, originNs, offset };
