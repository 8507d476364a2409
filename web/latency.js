// latency.js -- the latest `weir probe` result (GET /api/v1/probe/results)
// as the methodology's table (rows DPC ... DRL, columns min / avg / p95 /
// p99 / max / std-dev, in ms) and one histogram per metric.

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
  el.append(h('h1', 'Latency'), meta,
    h('div.card', h('h2', 'Latest probe (ms)'), h('div.table-wrap', h('table#latency-table',
      h('thead', h('tr', h('th', 'Metric'), ...COLS.map((c) => h('th.num', c === 'std' ? 'std-dev' : c)), h('th', 'What'))),
      tbody))),
    hists);
  let shown = null, charts = [];

  function render(res) {
    const m = res.metrics || {};
    meta.replaceChildren(h('div.muted', { id: 'probe-meta' },
      `Probe ${res.id ?? ''} started ${fmtTime(res.started)}`,
      res.options ? ` · options ${JSON.stringify(res.options)}` : ''));
    const names = [...METRICS.map(([k]) => k), ...Object.keys(m).filter((k) => !METRICS.some(([x]) => x === k))];
    tbody.replaceChildren(...names.map((k) => {
      const row = m[k];
      const what = (METRICS.find(([x]) => x === k) || [])[1] || '';
      return h('tr', { dataset: { metric: k } }, h('td', h('b', k)),
        ...COLS.map((c) => h('td.num', row ? fmtNum(row[c], 3) : '–')), h('td.muted', what));
    }));
    for (const c of charts) if (c) c.destroy();
    charts = [];
    const hs = res.histograms || {};
    hists.replaceChildren();
    for (const k of names) {
      const hg = hs[k];
      if (!hg || !hg.counts || !hg.counts.length) continue;
      const box = h('div', { dataset: { histogram: k } });
      hists.append(h('div.card', h('h2', `${k} (ms)`), box));
      charts.push(histogram(box, '', hg.bounds_ms || [], hg.counts));
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
