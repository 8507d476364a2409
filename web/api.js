// api.js -- the one door to weir's HTTP API for every page.
//
// Every request goes through request(), so cross-cutting concerns live here
// only: the status line in the header, JSON decoding, errors as ApiError
// (status plus weir's {"error","code",...} body), and authentication. The
// login pages (issue 6) plug in with setAuthHandler(): a 401 calls the handler
// (by default: go to /login?next=<this page>) and the request rejects.
// Live feeds (live.js) use url() and authFailed() from here as well.

export class ApiError extends Error {
  constructor(status, body, path) {
    super((body && body.error) || `HTTP ${status} on ${path}`);
    this.status = status;
    this.body = body || {};
    this.path = path;
  }
}

let onUnauthorized = () => {
  const next = encodeURIComponent(location.pathname + location.hash);
  location.assign(`/login?next=${next}`);
};
let extraHeaders = {};

/** Replaces what happens on a 401 (e.g. show a login form instead). */
export function setAuthHandler(fn) { onUnauthorized = fn; }
/** Headers added to every request (e.g. {Authorization: 'Bearer ...'}). */
export function setAuthHeaders(h) { extraHeaders = { ...h }; }
export function authFailed() { onUnauthorized(); }

/** An absolute URL for an API path, for WebSocket and EventSource too. */
export function url(path, scheme) {
  const u = new URL(path, location.href);
  if (scheme === 'ws') u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

const statusListeners = new Set();
export function onStatus(fn) { statusListeners.add(fn); }
function status(ok, detail) { for (const fn of statusListeners) fn(ok, detail); }

export async function request(method, path, body, opts = {}) {
  const init = { method, headers: { ...extraHeaders }, signal: opts.signal };
  if (body !== undefined) {
    if (typeof body === 'string') {
      init.body = body;
      init.headers['Content-Type'] = opts.contentType || 'text/plain';
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name !== 'AbortError') status(false, 'weir unreachable');
    throw e;
  }
  status(true);
  if (res.status === 401) {
    onUnauthorized();
    throw new ApiError(401, await res.json().catch(() => null), path);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { error: data }, path);
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);
