// rules.js -- streaming SQL rules: the list with status and metrics, a form
// that creates one from SQL (a 400 shows the error at its line and column,
// under the offending line), start/stop/delete, and one rule's live output.
//
// API (docs/api.md): GET/POST /api/v1/rules, GET/DELETE /api/v1/rules/{name},
// POST /api/v1/rules/{name}/start|stop|restart; output via live.js ?rule=.

import { get, post, del, ApiError } from './api.js';
import { TimeChart } from './chart.js';
import { openLive } from './live.js';
import { h, fmtNum, fmtBytes, fmtTime, every, errorBox, recordTimeMs } from './util.js';

export function mount(el, params) {
  return params[0] ? mountOne(el, params[0]) : mountList(el);
}

const badge = (st) => h(`span.badge.${st || 'unknown'}`, st || 'unknown');
const metric = (r, k) => (r.metrics ? r.metrics[k] : undefined);
const lat = (r, k) => (r.metrics && r.metrics.latency_ms ? r.metrics.latency_ms[k] : undefined);

/** The error box for a bad statement: message, then the line with a caret. */
export function sqlError(sql, e) {
  const b = e.body || {};
  const box = h('div.error', { id: 'sql-error' }, e.message);
  if (b.line) {
    const lines = sql.split('\n');
    const text = lines[b.line - 1] ?? '';
    const col = Math.max(1, b.column || 1);
    box.dataset.line = b.line;
    box.dataset.column = col;
    box.append(h('div', { id: 'sql-error-pos' }, `at line ${b.line}, column ${col}`),
      h('pre', `${text}\n${' '.repeat(col - 1)}^`));
  }
  return box;
}

function mountList(el) {
  const body = h('tbody');
  const listErr = h('div');
  const sql = h('textarea', {
    id: 'rule-sql', spellcheck: false,
    placeholder: "CREATE RULE hot AS\nSELECT key, avg(temperature) AS t\nFROM printers\nGROUP BY key, tumble(ts, '10s')\nEMIT INTO hot_printers",
  });
  const start = h('input', { type: 'checkbox', id: 'rule-start', checked: true });
  const formMsg = h('div', { id: 'rule-form-msg' });
  const form = h('form', {
    id: 'rule-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      formMsg.replaceChildren();
      const text = sql.value;
      try {
        const r = await post('/api/v1/rules', { sql: text, start: start.checked });
        formMsg.replaceChildren(h('div.notice', `Rule ${r && r.name ? r.name : ''} created.`));
        sql.value = '';
        refresh();
      } catch (e) {
        if (e instanceof ApiError && e.status === 400) formMsg.replaceChildren(sqlError(text, e));
        else if (e instanceof ApiError && (e.status === 404 || e.status === 405)) formMsg.replaceChildren(errorBox('this weir has no rules API yet'));
        else formMsg.replaceChildren(errorBox(e, 'Create'));
        sql.focus();
      }
    },
  }, sql, h('div.toolbar', { style: 'margin-top:8px' },
    h('label', start, ' start at once'), h('button.primary', { type: 'submit', id: 'rule-create' }, 'Create rule')), formMsg);

  async function act(name, what) {
    try {
      if (what === 'delete') {
        if (!confirm(`Delete rule ${name}?`)) return;
        await del(`/api/v1/rules/${encodeURIComponent(name)}`);
      } else {
        await post(`/api/v1/rules/${encodeURIComponent(name)}/${what}`, {});
      }
      listErr.replaceChildren();
    } catch (e) { listErr.replaceChildren(errorBox(e, `${what} ${name}`)); }
    refresh();
  }

  el.append(h('h1', 'Rules'), listErr,
    h('div.card', h('div.table-wrap', h('table#rules-table',
      h('thead', h('tr', h('th', 'Name'), h('th', 'Status'), h('th', 'Target'), h('th.num', 'In'), h('th.num', 'Out'),
        h('th.num', 'Late'), h('th.num', 'Errors'), h('th.num', 'State'), h('th.num', 'Latency p99 (ms)'), h('th', 'SQL'), h('th', ''))),
      body))),
    h('div.card', h('h2', 'New rule'), form));

  async function load() {
    try {
      const r = await get('/api/v1/rules');
      const list = r.rules || r || [];
      if (!list.length) {
        body.replaceChildren(h('tr', h('td.muted', { colSpan: 11 }, 'No rules yet.')));
        return;
      }
      body.replaceChildren(...list.map((x) => h('tr', { dataset: { rule: x.name, status: x.status } },
        h('td', h('a', { href: `#/rules/${encodeURIComponent(x.name)}` }, x.name)),
        h('td', badge(x.status), x.error ? h('div.muted', { title: x.error }, String(x.error).slice(0, 60)) : null),
        h('td', x.target || ''), h('td.num', fmtNum(metric(x, 'records_in'))), h('td.num', fmtNum(metric(x, 'records_out'))),
        h('td.num', fmtNum(metric(x, 'late'))), h('td.num', fmtNum(metric(x, 'errors'))),
        h('td.num', fmtBytes(metric(x, 'state_bytes'))), h('td.num', fmtNum(lat(x, 'p99'))),
        h('td.sql.mono', { title: x.sql || '' }, x.sql || ''),
        h('td', x.status === 'running'
          ? h('button', { onclick: () => act(x.name, 'stop') }, 'Stop')
          : h('button', { onclick: () => act(x.name, x.status === 'failed' ? 'restart' : 'start') },
            x.status === 'failed' ? 'Restart' : 'Start'),
        ' ', h('button.danger', { onclick: () => act(x.name, 'delete') }, 'Delete')))));
    } catch (e) {
      body.replaceChildren(h('tr', h('td', { colSpan: 11 }, e.status === 404 ? 'This weir has no rules API yet.' : errorBox(e, 'Rules'))));
    }
  }
  const stop = every(2000, load);
  const refresh = () => load();
  return stop;
}

function mountOne(el, name) {
  const enc = encodeURIComponent(name);
  const head = h('div');
  const err = h('div');
  const state = h('span.muted', { id: 'rule-feed-state' });
  const chartEl = h('div', { id: 'rule-chart' });
  const tbody = h('tbody');
  el.append(h('h1', h('a', { href: '#/rules' }, 'Rules'), ' / ', name), err, head,
    h('div.card', h('h2', 'Live output ', state), chartEl),
    h('div.card', h('h2', 'Recent output'), h('div.table-wrap', h('table#rule-output',
      h('thead', h('tr', h('th', 'Time'), h('th', 'Key'), h('th', 'Fields'))), tbody))));
  const chart = new TimeChart(chartEl, { height: 260, windowMs: 5 * 60e3 });
  chart.live([]);
  let recent = [], dirty = false;
  const feed = openLive({ rule: name }, (rs) => {
    for (const r of rs) {
      recent.unshift(r);
      const t = recordTimeMs(r);
      for (const [f, v] of Object.entries(r.fields || {})) {
        if (typeof v === 'number') chart.push(r.key ? `${r.key}/${f}` : f, Math.abs(Date.now() - t) < 300e3 ? t : Date.now(), v);
      }
    }
    if (recent.length > 50) recent.length = 50;
    dirty = true;
  }, (s) => { state.textContent = `(${s})`; });
  const tableTimer = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    tbody.replaceChildren(...recent.map((r) => h('tr', h('td', fmtTime(recordTimeMs(r))), h('td', r.key ?? ''),
      h('td.mono', JSON.stringify(r.fields || {})))));
  }, 200);
  const stop = every(2000, async () => {
    try {
      const x = await get(`/api/v1/rules/${enc}`);
      const m = x.metrics || {};
      const item = (l, v) => h('div.card.stat', h('div.l', l), h('div.v', v));
      head.replaceChildren(h('div.grid', item('Status', badge(x.status)), item('Records in', fmtNum(m.records_in)),
        item('Records out', fmtNum(m.records_out)), item('Errors', fmtNum(m.errors)),
        item('Latency avg / p99 (ms)', `${fmtNum(lat(x, 'avg'))} / ${fmtNum(lat(x, 'p99'))}`)),
      h('div.card', h('pre.mono', { style: 'margin:0;white-space:pre-wrap' }, x.sql || ''),
        x.error ? h('div.error', x.error) : null, h('div.muted', x.target ? `into ${x.target}` : '')));
      err.replaceChildren();
    } catch (e) { err.replaceChildren(errorBox(e, 'Rule')); }
  });
  return () => { stop(); feed.close(); clearInterval(tableTimer); chart.destroy(); };
}
