// chart.js -- uPlot wrappers: a time chart that is either live (points
// pushed as they arrive, x axis scrolling) or history (columns from the
// series API), and a bar chart for histograms.
//
// Smoothness at 10 Hz and more: pushes only append to a bounded buffer and
// mark the chart dirty; drawing happens at most once per animation frame
// (and no more than ~30 times a second), so a burst of 1000 records costs
// one redraw, and a hidden tab draws nothing. The buffer keeps at most
// MAX_ROWS points (oldest dropped), and the live window decides what is
// shown; past two points per pixel the window is reduced to each series'
// min and max per pixel (_columns). Lines are 1 px: canvas software
// rendering (no GPU) draws hairlines several times faster than wider
// strokes, which is what keeps 20,000 points at 30 frames a second. Each chart mirrors its state in data-* attributes of its element
// (data-mode, data-points, data-series, data-from, data-to) for tests and
// for debugging in the browser.

const MAX_ROWS = 20000;
const MAX_SERIES = 20;  // more would be unreadable; points of further ones are counted in data-dropped-points
const MIN_FRAME_MS = 33;
const COLORS = ['#1f6feb', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989',
  '#0a7ea4', '#953800', '#57606a', '#2da44e'];

export const chartsAvailable = () => typeof window.uPlot === 'function';

function noCharts(el) {
  el.replaceChildren();
  const d = document.createElement('div');
  d.className = 'none';
  d.textContent = 'Charts are not available: this weir was built without uPlot ' +
    '(run `npm ci` in web/ and rebuild). Tables still work.';
  el.append(d);
}

function sizeOf(el, height) {
  return { width: Math.max(200, el.clientWidth || 600), height };
}

export class TimeChart {
  constructor(el, { height = 260, windowMs = 60000, yLabel = '', zeroBased = false } = {}) {
    this.zeroBased = zeroBased;  // y axis from 0 (rates), else fitted to the data
    this.el = el;
    this.height = height;
    this.windowMs = windowMs;
    this.yLabel = yLabel;
    this.names = [];
    this.index = new Map();    // series name -> index
    this.rows = [];            // live: {t (s), s (series index), v}
    this.mode = 'live';
    this.plot = null;
    this.dirty = false;
    this.lastDraw = 0;
    this.raf = 0;
    el.classList.add('chart');
    this.ro = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(sizeOf(this.el, this.height));
    });
    this.ro.observe(el);
    this._mirror();
  }

  destroy() {
    cancelAnimationFrame(this.raf);
    this.ro.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  _build(names) {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.names = names.slice();
    this.index = new Map(names.map((n, i) => [n, i]));
    if (!chartsAvailable()) { noCharts(this.el); return; }
    this.el.replaceChildren();
    const opts = {
      ...sizeOf(this.el, this.height),
      scales: { x: { time: true }, ...(this.zeroBased ? { y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } } : {}) },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{}, ...names.map((n, i) => ({
        label: n, stroke: COLORS[i % COLORS.length], width: 1, spanGaps: true,
        points: { show: false },
      }))],
      axes: [{}, { label: this.yLabel, size: 70 }],
      hooks: { draw: [() => this._drawn()] },
    };
    this.plot = new window.uPlot(opts, [[], ...names.map(() => [])], this.el);
  }

  _mirror(extra = {}) {
    const d = this.el.dataset;
    d.mode = this.mode;
    d.series = this.names.join(',');
    d.points = String(this.mode === 'live' ? this.rows.length : (this.histPoints || 0));
    for (const [k, v] of Object.entries(extra)) d[k] = v;
  }

  /** The live columns for uPlot. Up to two points per pixel per series are
   *  drawn as they are; beyond that the window is cut into one bucket per
   *  pixel and each series keeps its minimum and maximum in every bucket
   *  (spikes stay visible), so a redraw costs about the same whether the
   *  buffer holds 2,000 points or 20,000. */
  _columns(from, now) {
    const rows = this.rows, k = this.names.length;
    let lo = 0;
    while (lo < rows.length && rows[lo].t < from) lo++;
    const n = rows.length - lo;
    const width = Math.max(100, Math.round(this.plot.bbox.width / devicePixelRatio) || 600);
    if (n <= 2 * width) {
      const xs = new Float64Array(n);
      const ys = Array.from({ length: k }, () => new Array(n).fill(null));
      for (let i = 0; i < n; i++) { const r = rows[lo + i]; xs[i] = r.t; ys[r.s][i] = r.v; }
      return [xs, ...ys];
    }
    const dt = (now - from) / width;
    const xs = new Float64Array(2 * width);
    for (let b = 0; b < width; b++) { xs[2 * b] = from + b * dt; xs[2 * b + 1] = from + (b + 0.5) * dt; }
    const ys = Array.from({ length: k }, () => new Array(2 * width).fill(null));
    for (let i = lo; i < rows.length; i++) {
      const r = rows[i];
      const b = Math.min(width - 1, Math.floor((r.t - from) / dt));
      const y = ys[r.s], a = 2 * b;
      if (y[a] === null) { y[a] = r.v; y[a + 1] = r.v; continue; }
      if (r.v < y[a]) y[a] = r.v;
      if (r.v > y[a + 1]) y[a + 1] = r.v;
    }
    return [xs, ...ys];
  }

  /** Live mode with these series (names like "key/field"); keeps points of
   *  series that stay. */
  live(names, windowMs) {
    if (windowMs) this.windowMs = windowMs;
    const keep = new Set(names);
    const same = this.mode === 'live' && names.join('\n') === this.names.join('\n');
    this.mode = 'live';
    if (!same) {
      const old = this.names;
      this.rows = this.rows.filter((r) => keep.has(old[r.s]));
      this._build(names);
      for (const r of this.rows) r.s = this.index.get(old[r.s]);
    }
    delete this.el.dataset.from;
    delete this.el.dataset.to;
    this._schedule();
  }

  // Cost of a redraw, from building the columns to uPlot's canvas work, for
  // tests and a look in devtools: a moving average and the worst seen.
  _drawn() {
    if (this.t0 === undefined) return;
    const ms = performance.now() - this.t0;
    this.t0 = undefined;
    this.drawAvg = this.drawAvg === undefined ? ms : this.drawAvg * 0.9 + ms * 0.1;
    this.drawMax = Math.max(this.drawMax || 0, ms);
    this.draws = (this.draws || 0) + 1;
  }

  /** Adds one point to a live series, creating the series if needed. */
  push(name, tMs, v) {
    if (this.mode !== 'live' || typeof v !== 'number' || !Number.isFinite(v)) return;
    if (!this.index.has(name)) {
      if (this.names.length >= MAX_SERIES) {
        this.el.dataset.droppedPoints = String((Number(this.el.dataset.droppedPoints) || 0) + 1);
        return;
      }
      this.live([...this.names, name]);
    }
    const row = { t: tMs / 1000, s: this.index.get(name), v };
    const rows = this.rows;
    if (!rows.length || rows[rows.length - 1].t <= row.t) rows.push(row);
    else {  // late point: insert in order (rare; binary search)
      let lo = 0, hi = rows.length;
      while (lo < hi) { const m = (lo + hi) >> 1; if (rows[m].t <= row.t) lo = m + 1; else hi = m; }
      rows.splice(lo, 0, row);
    }
    if (rows.length > MAX_ROWS) rows.splice(0, rows.length - MAX_ROWS);
    this._schedule();
  }

  _schedule() {
    this.dirty = true;
    if (!this.raf) this.raf = requestAnimationFrame((ts) => this._frame(ts));
  }

  _frame(ts) {
    this.raf = 0;
    if (this.mode !== 'live') return;
    if (ts - this.lastDraw < MIN_FRAME_MS) { this._schedule(); return; }
    this.lastDraw = ts;
    const now = Date.now() / 1000, from = now - this.windowMs / 1000;
    // Drop what scrolled out (with a margin for late points).
    let cut = 0;
    while (cut < this.rows.length && this.rows[cut].t < from - this.windowMs / 2000) cut++;
    if (cut) this.rows.splice(0, cut);
    if (this.plot) {
      this.t0 = performance.now();
      const [xs, ...ys] = this._columns(from, now);
      this.plot.batch(() => {
        this.plot.setData([xs, ...ys], false);
        this.plot.setScale('x', { min: from, max: now });
      });
    }
    this._mirror({ drawAvgMs: (this.drawAvg || 0).toFixed(2), drawMaxMs: (this.drawMax || 0).toFixed(2),
      draws: String(this.draws || 0) });
    // Keep scrolling while live, even between points.
    if (!document.hidden) this._schedule();
    else document.addEventListener('visibilitychange', () => this._schedule(), { once: true });
  }

  /** History mode: xs in ms, one array of values per name. */
  history(names, xsMs, columns, fromMs, toMs) {
    this.mode = 'history';
    this.rows = [];
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this._build(names);
    this.histPoints = xsMs.length;
    if (this.plot) {
      this.plot.setData([xsMs.map((t) => t / 1000), ...columns], true);
      if (fromMs !== undefined) this.plot.setScale('x', { min: fromMs / 1000, max: toMs / 1000 });
    }
    this._mirror({ from: String(Math.round(fromMs)), to: String(Math.round(toMs)) });
  }
}

/** A histogram: bucket upper bounds (ms) and counts, drawn as bars. */
export function histogram(el, title, bounds, counts, height = 180) {
  el.classList.add('chart');
  el.dataset.points = String(counts.length);
  if (!chartsAvailable()) { noCharts(el); return null; }
  el.replaceChildren();
  const xs = counts.map((_, i) => i);
  const label = (i) => (bounds[i] === undefined ? '∞' : `≤${+Number(bounds[i]).toPrecision(3)}`);
  const bars = window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  const opts = {
    title, ...sizeOf(el, height), legend: { show: false },
    scales: { x: { time: false, range: [-0.5, Math.max(0.5, counts.length - 0.5)] } },
    series: [{ value: (u, i) => (i === null ? '' : label(i)) },
      { label: 'count', stroke: '#1f6feb', fill: 'rgba(31,111,235,.35)', paths: bars, points: { show: false } }],
    axes: [{ values: (u, vals) => vals.map((i) => (Number.isInteger(i) ? label(i) : '')), rotate: -45, size: 50 },
      { size: 50 }],
  };
  const p = new window.uPlot(opts, [xs, counts], el);
  const ro = new ResizeObserver(() => p.setSize(sizeOf(el, height)));
  ro.observe(el);
  return { destroy() { ro.disconnect(); p.destroy(); } };
}
