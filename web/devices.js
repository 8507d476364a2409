// devices.js -- connected MQTT clients from GET /api/v1/clients: id,
// address, connected since, subscriptions and message rates (the difference
// of the per-connection counters between two polls).

import { get } from './api.js';
import { h, fmtNum, fmtTime, fmtDuration, every, errorBox } from './util.js';

export function mount(el) {
  const err = h('div');
  const count = h('span.muted', { id: 'clients-count' });
  const tbody = h('tbody');
  el.append(h('h1', 'Devices ', count), err, h('div.card', h('div.table-wrap', h('table#clients-table',
    h('thead', h('tr', h('th', 'Client id'), h('th', 'Address'), h('th', 'Protocol'), h('th', 'Connected since'),
      h('th.num', 'In msg/s'), h('th.num', 'Out msg/s'), h('th.num', 'In total'), h('th.num', 'Out total'),
      h('th.num', 'Queued'), h('th', 'Subscriptions'))),
    tbody))));
  let prev = new Map(), prevAt = 0;
  const stop = every(2000, async () => {
    try {
      const r = await get('/api/v1/clients');
      err.replaceChildren();
      const dt = prevAt ? (r.now_ms - prevAt) / 1000 : 0;
      const rate = (c, k) => {
        const p = prev.get(c.client_id + '\u0000' + c.connected_ms);
        return p && dt > 0 ? Math.max(0, (c[k] - p[k]) / dt) : null;
      };
      count.textContent = `(${r.clients.length} connected)`;
      tbody.replaceChildren(...(r.clients.length ? r.clients.map((c) => h('tr', { dataset: { client: c.client_id } },
        h('td.mono', c.client_id || h('span.muted', '(empty)')), h('td.mono', c.peer), h('td', c.protocol),
        h('td', { title: c.connected_since }, fmtTime(c.connected_since), h('div.muted', fmtDuration((r.now_ms - c.connected_ms) / 1000))),
        h('td.num', fmtNum(rate(c, 'messages_in'), 1)), h('td.num', fmtNum(rate(c, 'messages_out'), 1)),
        h('td.num', fmtNum(c.messages_in)), h('td.num', fmtNum(c.messages_out)), h('td.num', fmtNum(c.queued)),
        h('td.mono', c.subscriptions.length ? c.subscriptions.map((s) => `${s.filter} (q${s.qos})`).join(', ') : h('span.muted', 'none'))))
        : [h('tr', h('td.muted', { colSpan: 10 }, 'No MQTT clients connected.'))]));
      prev = new Map(r.clients.map((c) => [c.client_id + '\u0000' + c.connected_ms, c]));
      prevAt = r.now_ms;
    } catch (e) { err.replaceChildren(errorBox(e, 'Clients')); }
  });
  return stop;
}
