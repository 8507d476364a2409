// util.js -- small DOM and formatting helpers shared by the pages.

/** h('table#id.card', {onclick}, child, ...) -> element. Strings become text nodes. */
export function h(tag, attrs, ...children) {
  const [head, ...classes] = tag.split('.');
  const [name, id] = head.split('#');
  const el = document.createElement(name || 'div');
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && k !== 'list') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export function fmtDuration(s) {
  s = Math.floor(s || 0);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${ss}s`;
  return `${ss}s`;
}

export function fmtTime(v) {
  if (v === null || v === undefined || v === '') return '–';
  const d = new Date(typeof v === 'number' ? v : Date.parse(v));
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(undefined, { hour12: false });
}

/** Milliseconds since the epoch from whatever a record carries. */
export function recordTimeMs(r) {
  if (typeof r.ts_ns === 'number') return r.ts_ns / 1e6;
  const t = r.ts ?? r.time ?? r.timestamp;
  if (typeof t === 'number') {
    if (t > 1e17) return t / 1e6;  // ns
    if (t > 1e14) return t / 1e3;  // us
    if (t > 1e11) return t;        // ms
    return t * 1e3;                // s
  }
  if (typeof t === 'string') return Date.parse(t);
  return Date.now();
}

/** Runs fn now and every ms while the page is shown; returns the stopper. */
export function every(ms, fn) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { /* shown by the page */ }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

export function errorBox(e, prefix) {
  return h('div.error', (prefix ? prefix + ': ' : '') + (e && e.message ? e.message : String(e)));
}
