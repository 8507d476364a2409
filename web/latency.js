// latency.js -- the latest `weir probe` result (GET /api/v1/probe/results)
// as the methodology's table (rows DPC ... DRL, columns min / avg / p95 /
// p99 / max / std-dev, in ms), one histogram per metric, and the figures of
// each measured path (direct, push, poll) with what was not measured and why.

import { get } from './api.js';
import { histogram } from './chart.js';
import { h, fmtNum, fmtTime, every, errorBox } from './util.js';

const METRICS = [
  ['DPC', 'T2−T1: publish to receipt by weir'],
  ['DCD', 'T3−T2: receipt to durably stored'],
  ['DDC', 'T4−T3: stored to read back'],
  ['DCS', 'T5−T4: read back to the subscriber'],
  ['LCDC', 'T4−T2: in weir, receipt to read back'],
  ['LPDS', 'T5−T1: publisher to subscriber through storage'],
  ['LPS', 'publisher to subscriber without storage'],
  ['DRL', 'delay added by a rate limiter'],
];
const COLS = ['n', 'min', 'avg', 'p95', 'p99', 'max', 'std'];

export function mount(el) {
  const meta = h('div');
  const tbody = h('tbody');
  const hists = h('div.hist-grid');
  const paths = h('div');
  el.append(h('h1', 'Latency'), meta,
    h('div.card', h('h2', 'Latest probe (ms)'), h('div.table-wrap', h('table#latency-table',
      h('thead', h('tr', h('th', 'Metric'), ...COLS.map((c) => h('th.num', c === 'std' ? 'std-dev' : c)), h('th', 'What'))),
      tbody))),
    hists, paths);
  let shown = null, charts = [];

  const metricTable = (id, m, notMeasured = {}) => h('div.table-wrap', h(`table#${id}`,
    h('thead', h('tr', h('th', 'Metric'), ...COLS.map((c) => h('th.num', c === 'std' ? 'std-dev' : c)), h('th', 'What'))),
    h('tbody', ...[...METRICS.map(([k]) => k), ...Object.keys(m).filter((k) => !METRICS.some(([x]) => x === k))]
      .filter((k) => id === 'latency-table' || m[k])
      .map((k) => {
        const row = m[k];
        const what = (METRICS.find(([x]) => x === k) || [])[1] || '';
        return h('tr', { dataset: { metric: k } }, h('td', h('b', k)),
          ...COLS.map((c) => h('td.num', row ? fmtNum(row[c], 3) : '–')),
          h('td.muted', notMeasured[k] ? `${what} — not measured: ${notMeasured[k]}` : what));
      }))));

  function render(res) {
    const m = res.metrics || {};
    const opts = Object.entries(res.options || {}).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}=${v}`).join(', ');
    meta.replaceChildren(h('div.muted', { id: 'probe-meta', style: 'overflow-wrap:anywhere' },
      `Probe ${res.id ?? ''} started ${fmtTime(res.started)}`,
      res.sent !== undefined ? ` · ${fmtNum(res.sent)} readings sent` : '',
      res.reference_path ? ` · headline storage figures from the ${res.reference_path} path` : '',
      opts ? h('div', opts) : null));
    tbody.replaceChildren(...metricTable('latency-table', m, res.not_measured || {}).querySelectorAll('tbody tr'));
    paths.replaceChildren(...Object.entries(res.paths || {}).map(([name, p]) => h('div.card',
      h('h2', `Path: ${name}`, h('span.muted', ` (${fmtNum(p.received)} received${p.duplicates ? `, ${p.duplicates} duplicates` : ''})`)),
      metricTable(`latency-path-${name}`, p.metrics || {}))));
    for (const c of charts) if (c) c.destroy();
    charts = [];
    const hs = res.histograms || {};
    hists.replaceChildren();
    for (const k of Object.keys(hs)) {
      const hg = hs[k];
      if (!hg || !hg.counts || !hg.counts.length) continue;
      // Drop the empty tail: keep one empty bucket after the last sample.
      let last = hg.counts.length - 1;
      while (last > 0 && !hg.counts[last]) last--;
      const n = Math.min(hg.counts.length, last + 2);
      const box = h('div', { dataset: { histogram: k } });
      hists.append(h('div.card', h('h2', `${k} (ms)`), box));
      charts.push(histogram(box, '', (hg.bounds_ms || []).slice(0, n), hg.counts.slice(0, n)));
    }
  }

  const stop = every(3000, async () => {
    try {
      const res = await get('/api/v1/probe/results');
      const r = res && res.results ? res.results[0] : res;  // tolerate a list
      if (!r) throw Object.assign(new Error('no probe result yet'), { status: 404 });
      const sig = JSON.stringify([r.id, r.started]);
      if (sig !== shown) { shown = sig; render(r); }
    } catch (e) {
      if (e.status === 404) {
        meta.replaceChildren(h('div.notice', 'No probe result yet. Run `weir probe` against this node ' +
          '(it measures DPC … DRL and posts its result here).'));
      } else meta.replaceChildren(errorBox(e, 'Probe results'));
      if (!shown) tbody.replaceChildren(...METRICS.map(([k, what]) => h('tr', h('td', h('b', k)),
        ...COLS.map(() => h('td.num', '–')), h('td.muted', what))));
    }
  });
  return () => { stop(); for (const c of charts) if (c) c.destroy(); };
}
