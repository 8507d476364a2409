// live.js -- live feeds of records: a stream (optionally one key, some
// fields) or a rule's output.
//
// The first choice is weir's push feed, WebSocket /api/v1/live?stream=...
// (or ?rule=...), whose messages are JSON records (or arrays of them). When
// that cannot be opened (an older weir, or a proxy that drops WebSockets),
// it falls back to Server-Sent Events on the same path, and for streams
// finally to long polls of GET /api/v1/streams/{name}/records?wait=, which
// every weir has. The page gets the same record objects whichever path is
// used: {ts|ts_ns, key, partition, offset, fields, ...}. `onState` is told
// which transport is in use ("ws", "sse", "poll", "closed", "error: ...").

import { url, authFailed, get } from './api.js';

function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return q.toString();
}

// Messages: {"type":"record"|"row", ..., "fields":{...}} carry data;
// {"type":"subscribed"} and {"type":"error","error":...} are control.
function unpack(data, onError) {
  let m;
  try { m = JSON.parse(data); } catch { return []; }
  const list = Array.isArray(m) ? m : m && Array.isArray(m.records) ? m.records : [m];
  const out = [];
  for (const x of list) {
    if (!x || typeof x !== 'object') continue;
    if (x.type === 'error') onError(x.error || 'error');
    else if (x.fields && typeof x.fields === 'object') out.push(x);
  }
  return out;
}

/**
 * openLive({stream, key, fields} | {rule}, onRecords, onState) -> {close()}
 */
export function openLive(what, onRecords, onState = () => {}) {
  const params = what.rule ? { rule: what.rule } : {
    stream: what.stream, key: what.key, fields: what.fields && what.fields.join(','),
  };
  const path = `/api/v1/live?${qs(params)}`;
  let closed = false, ws = null, es = null, abort = null;

  const fail = (why) => { if (!closed) onState(`error: ${why}`); };

  function viaPoll() {
    if (!what.stream) { fail('no live feed for rules in this weir'); return; }
    onState('poll');
    abort = new AbortController();
    let cursor = null;
    const base = `/api/v1/streams/${encodeURIComponent(what.stream)}/records`;
    (async () => {
      while (!closed) {
        const q = { limit: 1000, wait: '25s', key: what.key, fields: what.fields && what.fields.join(',') };
        if (cursor) q.cursor = cursor; else q.from = 'now-2s';
        try {
          const page = await get(`${base}?${qs(q)}`, { signal: abort.signal });
          if (page.next_cursor) cursor = page.next_cursor;
          if (page.records && page.records.length) onRecords(page.records);
        } catch (e) {
          if (closed || e.name === 'AbortError') return;
          fail(e.message);
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    })();
  }

  function viaSse() {
    if (typeof EventSource !== 'function') { viaPoll(); return; }
    let opened = false;
    es = new EventSource(url(path));
    es.onopen = () => { opened = true; onState('sse'); };
    const onEvent = (ev) => { const rs = unpack(ev.data, fail); if (rs.length) onRecords(rs); };
    for (const type of ['message', 'record', 'row', 'error']) es.addEventListener(type, (ev) => { if (ev.data) onEvent(ev); });
    es.onerror = () => {
      if (opened || closed) return;  // EventSource reconnects by itself once it worked
      es.close(); es = null;
      viaPoll();
    };
  }

  function viaWs() {
    let opened = false;
    try { ws = new WebSocket(url(path, 'ws')); } catch { viaSse(); return; }
    ws.onopen = () => { opened = true; onState('ws'); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      const rs = unpack(ev.data, fail);
      if (rs.length) onRecords(rs);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (closed) return;
      if (ev.code === 4401 || ev.code === 1008) { authFailed(); return; }
      if (!opened) { viaSse(); return; }
      onState('reconnecting');
      setTimeout(() => { if (!closed) viaWs(); }, 1000);
    };
  }

  viaWs();
  return {
    close() {
      closed = true;
      if (ws) ws.close();
      if (es) es.close();
      if (abort) abort.abort();
      onState('closed');
    },
  };
}
