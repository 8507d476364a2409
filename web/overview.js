// overview.js -- node health at a glance: /api/v1/overview (health, uptime,
// MQTT, stream totals), /api/v1/rules (running/failed) and /api/v1/streams
// (storage per stream), polled every second; the ingest rate chart is the
// difference of accepted records between polls.

import { get } from './api.js';
import { TimeChart } from './chart.js';
import { h, fmtNum, fmtBytes, fmtDuration, fmtTime, every } from './util.js';

export function mount(el) {
  const stat = (label, id) => h('div.card.stat', h('div.l', label), h('div.v', { id }, '–'));
  const chartEl = h('div', { id: 'ingest-chart' });
  const streamsBody = h('tbody');
  const problems = h('div');
  el.append(
    h('h1', 'Overview'), problems,
    h('div.grid',
      stat('Health', 'ov-health'), stat('Uptime', 'ov-uptime'), stat('MQTT clients', 'ov-clients'),
      stat('Connections', 'ov-connections'), stat('Ingest (records/s)', 'ov-rate'),
      stat('Rules running', 'ov-rules-running'), stat('Rules failed', 'ov-rules-failed'),
      stat('Storage', 'ov-storage')),
    h('div.card', h('h2', 'Ingest rate (records/s) and MQTT messages in (/s)'), chartEl),
    h('div.card', h('h2', 'Storage per stream'),
      h('div.table-wrap', h('table#ov-streams',
        h('thead', h('tr', h('th', 'Stream'), h('th.num', 'Records'), h('th.num', 'Size'),
          h('th', 'Last record'), h('th', 'Retention'))),
        streamsBody))),
  );
  const chart = new TimeChart(chartEl, { height: 220, windowMs: 2 * 60000, yLabel: 'per second', zeroBased: true });
  chart.live(['records/s', 'mqtt msgs/s']);
  const set = (id, v) => { const e = el.querySelector('#' + id); if (e) e.textContent = v; };
  let prev = null;

  const stopOverview = every(1000, async () => {
    try {
      const o = await get('/api/v1/overview');
      problems.replaceChildren();
      set('ov-health', o.status === 'ok' ? 'OK' : o.status);
      el.querySelector('#ov-health').className = o.status === 'ok' ? 'v badge ok' : 'v badge bad';
      set('ov-uptime', fmtDuration(o.uptime_seconds));
      set('ov-clients', fmtNum(o.mqtt ? o.mqtt.clients : null));
      set('ov-connections', fmtNum(o.mqtt ? o.mqtt.connections : null));
      set('ov-storage', fmtBytes(o.streams.bytes));
      if (prev && o.now_ms > prev.now_ms) {
        const dt = (o.now_ms - prev.now_ms) / 1000;
        const rate = Math.max(0, (o.streams.accepted - prev.streams.accepted) / dt);
        set('ov-rate', fmtNum(rate, 1));
        chart.push('records/s', o.now_ms, rate);
        if (o.mqtt && prev.mqtt) chart.push('mqtt msgs/s', o.now_ms, Math.max(0, (o.mqtt.messages_in - prev.mqtt.messages_in) / dt));
      }
      prev = o;
    } catch (e) {
      set('ov-health', 'unreachable');
      el.querySelector('#ov-health').className = 'v badge bad';
      problems.replaceChildren(h('div.error', `Overview: ${e.message}`));
    }
  });

  const stopLists = every(3000, async () => {
    try {
      const r = await get('/api/v1/rules');
      const list = r.rules || r || [];
      set('ov-rules-running', String(list.filter((x) => x.status === 'running').length));
      set('ov-rules-failed', String(list.filter((x) => x.status === 'failed').length));
    } catch (e) {
      set('ov-rules-running', e.status === 404 ? 'n/a' : '?');
      set('ov-rules-failed', e.status === 404 ? 'n/a' : '?');
    }
    const s = await get('/api/v1/streams');
    streamsBody.replaceChildren(...s.streams.map((st) => h('tr.link', {
      onclick: () => { location.hash = `#/streams/${encodeURIComponent(st.name)}`; },
    }, h('td', st.name), h('td.num', fmtNum(st.records)), h('td.num', fmtBytes(st.bytes)),
    h('td', fmtTime(st.last)), h('td', st.retention || 'none'))));
  });

  return () => { stopOverview(); stopLists(); chart.destroy(); };
}
