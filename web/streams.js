// streams.js -- the streams list, and one stream: a chart of chosen fields
// per key that is live (pushed records) or history (the series API over a
// chosen time range) without leaving the page, and its recent records.

import { get, ApiError } from './api.js';
import { TimeChart } from './chart.js';
import { openLive } from './live.js';
import { h, fmtNum, fmtBytes, fmtTime, every, errorBox, recordTimeMs } from './util.js';

const NUMERIC = new Set(['double', 'int', 'bool', 'float', 'integer']);
const RANGES = [['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3]];
const LIVE_WINDOW_MS = 60e3;
const MAX_TABLE = 50;
const BUCKETS = 400;

export function mount(el, params) {
  return params[0] ? mountOne(el, params[0]) : mountList(el);
}

function mountList(el) {
  const body = h('tbody');
  const err = h('div');
  el.append(h('h1', 'Streams'), err, h('div.card', h('div.table-wrap', h('table#streams-table',
    h('thead', h('tr', h('th', 'Name'), h('th', 'Source'), h('th.num', 'Records'), h('th.num', 'Size'),
      h('th', 'First'), h('th', 'Last'), h('th', 'Retention'), h('th.num', 'Accepted'), h('th.num', 'Rejected'))),
    body))));
  return every(2000, async () => {
    try {
      const r = await get('/api/v1/streams');
      err.replaceChildren();
      if (!r.streams.length) {
        body.replaceChildren(h('tr', h('td.muted', { colSpan: 9 }, 'No streams yet. Define one with POST /api/v1/streams or a [stream.NAME] section.')));
        return;
      }
      body.replaceChildren(...r.streams.map((s) => h('tr.link', {
        dataset: { stream: s.name },
        onclick: () => { location.hash = `#/streams/${encodeURIComponent(s.name)}`; },
      }, h('td', h('a', { href: `#/streams/${encodeURIComponent(s.name)}` }, s.name)), h('td.mono', s.source || 'http'),
      h('td.num', fmtNum(s.records)), h('td.num', fmtBytes(s.bytes)), h('td', fmtTime(s.first)), h('td', fmtTime(s.last)),
      h('td', s.retention || 'none'), h('td.num', fmtNum(s.accepted)), h('td.num', fmtNum(s.rejected)))));
    } catch (e) { err.replaceChildren(errorBox(e, 'Streams')); }
  });
}

/** A bucket width near range/BUCKETS that reads well: 1ms ... 1d. */
function niceEvery(rangeMs) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3,
    300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
  const want = rangeMs / BUCKETS;
  return steps.find((s) => s >= want) || 86400e3;
}

function mountOne(el, name) {
  const enc = encodeURIComponent(name);
  const info = h('div.grid');
  const err = h('div');
  const fieldsBox = h('span.fields', { id: 'field-picker' });
  const keySel = h('select', { id: 'key-picker' }, h('option', { value: '' }, 'all keys'));
  const modeBox = h('span', { id: 'mode', className: 'muted' });
  const fromIn = h('input', { type: 'datetime-local', id: 'range-from', step: 1 });
  const toIn = h('input', { type: 'datetime-local', id: 'range-to', step: 1 });
  const rangeBtns = [h('button', { dataset: { range: 'live' }, className: 'on' }, 'Live'),
    ...RANGES.map(([label]) => h('button', { dataset: { range: label } }, label))];
  const chartEl = h('div', { id: 'stream-chart' });
  const tbody = h('tbody');
  el.append(
    h('h1', h('a', { href: '#/streams' }, 'Streams'), ' / ', name),
    err, info,
    h('div.card',
      h('div.toolbar', h('span.group', rangeBtns),
        h('span', 'from ', fromIn, ' to ', toIn, ' ', h('button', { id: 'range-apply', onclick: () => applyCustom() }, 'Show')),
        modeBox),
      h('div.toolbar', h('span.muted', 'Fields:'), fieldsBox, h('span.muted', 'Key:'), keySel,
        h('span.muted', { title: 'A chart draws at most 20 series (key × field); choose a key to see others.' }, '(at most 20 series)')),
      chartEl),
    h('div.card', h('h2', 'Recent records'), h('div.table-wrap', h('table#records-table',
      h('thead', h('tr', h('th', 'Time'), h('th', 'Key'), h('th', 'Partition:offset'), h('th', 'Fields'))), tbody))),
  );

  const chart = new TimeChart(chartEl, { height: 300, windowMs: LIVE_WINDOW_MS });
  let stream = null;            // the definition with statistics
  let chosen = [];              // chosen field names
  const keys = new Set();       // keys seen
  let feed = null;
  let mode = { live: true };
  let recent = [];              // newest first
  let tableDirty = false;
  let destroyed = false;

  const seriesName = (key, f) => (key ? `${key}/${f}` : f);

  function numericFields() {
    const seen = stream.fields_seen || {};
    const declared = stream.fields || {};
    const all = { ...seen, ...declared };
    // The event-time field is the x axis, not a value to plot.
    return Object.keys(all).filter((f) => NUMERIC.has(all[f]) && f !== stream.timestamp);
  }

  function renderInfo() {
    const s = stream;
    const item = (l, v) => h('div.card.stat', h('div.l', l), h('div.v', v));
    info.replaceChildren(item('Records', fmtNum(s.records)), item('Size', fmtBytes(s.bytes)),
      item('First', fmtTime(s.first)), item('Last', fmtTime(s.last)), item('Retention', s.retention || 'none'));
    for (const d of info.querySelectorAll('.v')) d.style.fontSize = '15px';
  }

  function renderFields() {
    const nums = numericFields();
    if (!chosen.length) chosen = nums.slice(0, 2);
    const have = new Set([...fieldsBox.querySelectorAll('input')].map((i) => i.value));
    if (nums.length === have.size && nums.every((f) => have.has(f))) return;
    fieldsBox.replaceChildren(...(nums.length ? nums.map((f) => h('label', h('input', {
      type: 'checkbox', value: f, checked: chosen.includes(f),
      onchange: (ev) => {
        chosen = ev.target.checked ? [...chosen, f] : chosen.filter((x) => x !== f);
        restart();
      },
    }), ' ', f)) : [h('span.muted', 'no numeric fields seen yet')]));
  }

  function addKey(k) {
    if (k === null || k === undefined || k === '' || keys.has(k) || keys.size >= 500) return;
    keys.add(k);
    keySel.append(h('option', { value: k }, k));
  }

  function onRecords(rs) {
    const now = Date.now();
    for (const r of rs) {
      addKey(r.key);
      recent.unshift(r);
      if (!mode.live) continue;
      if (keySel.value && r.key !== keySel.value) continue;
      let t = recordTimeMs(r);
      // Event time far from now (replayed or skewed devices): plot at arrival.
      if (!(Math.abs(now - t) < LIVE_WINDOW_MS)) t = r.arrival_ns ? r.arrival_ns / 1e6 : now;
      const fields = r.fields || {};
      for (const f of chosen) {
        let v = fields[f];
        if (typeof v === 'boolean') v = v ? 1 : 0;
        if (typeof v === 'number') chart.push(seriesName(r.key, f), t, v);
      }
    }
    if (recent.length > MAX_TABLE) recent.length = MAX_TABLE;
    tableDirty = true;
  }

  // The table redraws at most 5 times a second, whatever the record rate.
  const tableTimer = setInterval(() => {
    if (!tableDirty) return;
    tableDirty = false;
    tbody.replaceChildren(...recent.map((r) => h('tr',
      h('td', fmtTime(recordTimeMs(r))), h('td', r.key ?? ''), h('td.mono', `${r.partition ?? '–'}:${r.offset ?? '–'}`),
      h('td.mono', JSON.stringify(r.fields || {})))));
  }, 200);

  function setButtons(which) {
    for (const b of rangeBtns) b.classList.toggle('on', b.dataset.range === which);
  }

  function startLive() {
    mode = { live: true };
    setButtons('live');
    // Keep the points of series still wanted (chosen field, chosen key).
    const k = keySel.value;
    chart.live(chart.names.filter((n) => {
      const i = n.lastIndexOf('/');
      const key = i < 0 ? '' : n.slice(0, i), f = i < 0 ? n : n.slice(i + 1);
      return chosen.includes(f) && (!k || key === k);
    }), LIVE_WINDOW_MS);
    if (feed) feed.close();
    feed = openLive({ stream: name, key: keySel.value || undefined }, onRecords,
      (s) => { modeBox.textContent = `live (${s})`; chartEl.dataset.transport = s; });
  }

  async function showHistory(fromMs, toMs, label) {
    mode = { live: false, fromMs, toMs, label };
    setButtons(label);
    const pad = (n) => String(n).padStart(2, '0');
    const local = (ms) => { const d = new Date(ms); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
    fromIn.value = local(fromMs);
    toIn.value = local(toMs);
    const everyMs = niceEvery(toMs - fromMs);
    modeBox.textContent = `history, ${everyMs} ms buckets (avg)…`;
    const key = keySel.value;
    // One key chosen: its series; otherwise each field over all keys (records
    // without a key, e.g. imported files, count too).
    const keyList = key ? [key] : [''];
    const wanted = [];
    for (const k of keyList) for (const f of chosen) wanted.push([k, f]);
    try {
      const answers = await Promise.all(wanted.map(([k, f]) => get(`/api/v1/streams/${enc}/series?` +
        new URLSearchParams({ field: f, from: String(Math.floor(fromMs)), to: String(Math.ceil(toMs)), every: `${everyMs}ms`, agg: 'avg', ...(k ? { key: k } : {}) }))));
      if (destroyed || mode.live || mode.fromMs !== fromMs) return;
      const xs = [...new Set(answers.flatMap((a) => a.t))].sort((a, b) => a - b);
      const at = new Map(xs.map((t, i) => [t, i]));
      const cols = answers.map((a) => {
        const col = new Array(xs.length).fill(null);
        a.t.forEach((t, i) => { col[at.get(t)] = a.v[i]; });
        return col;
      });
      chart.history(wanted.map(([k, f]) => seriesName(k, f)), xs, cols, fromMs, toMs);
      modeBox.textContent = `history: ${xs.length} buckets of ${everyMs} ms (avg)`;
      err.replaceChildren();
    } catch (e) {
      if (!destroyed) err.replaceChildren(errorBox(e, 'History'));
    }
  }

  function applyCustom() {
    const f = Date.parse(fromIn.value), t = Date.parse(toIn.value);
    if (!(f < t)) { err.replaceChildren(errorBox('choose a "from" before "to"')); return; }
    if (feed) { feed.close(); feed = null; }
    showHistory(f, t, 'custom');
  }

  function restart() {
    if (mode.live) startLive();
    else showHistory(mode.fromMs, mode.toMs, mode.label);
  }

  for (const b of rangeBtns) {
    b.addEventListener('click', () => {
      const which = b.dataset.range;
      if (which === 'live') { startLive(); return; }
      if (feed) { feed.close(); feed = null; }
      const span = RANGES.find(([l]) => l === which)[1];
      const now = Date.now();
      showHistory(now - span, now, which);
    });
  }
  keySel.addEventListener('change', restart);

  const stopInfo = every(2000, async () => {
    try {
      stream = await get(`/api/v1/streams/${enc}`);
      renderInfo();
      const first = !fieldsBox.childElementCount;
      renderFields();
      if (first) {
        // Seed keys and the table with what arrived in the last minute.
        try {
          const page = await get(`/api/v1/streams/${enc}/records?from=now-1m&limit=500`);
          if (!destroyed) onRecords(page.records || []);
        } catch (e) { /* the live feed fills them */ }
        if (!destroyed) startLive();
      }
    } catch (e) {
      err.replaceChildren(errorBox(e, e instanceof ApiError && e.status === 404 ? 'Not found' : 'Stream'));
    }
  });

  return () => {
    destroyed = true;
    stopInfo();
    clearInterval(tableTimer);
    if (feed) feed.close();
    chart.destroy();
  };
}
