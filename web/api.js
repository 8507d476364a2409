// api.js -- the one door to weir's HTTP API for every page.
//
// Every request goes through request(), so cross-cutting concerns live here
// only: the status line in the header, JSON decoding, errors as ApiError
// (status plus weir's {"error","code",...} body), and authentication. The
// login pages (issue 6) plug in with setAuthHandler(): a 401 calls the handler
// (by default: go to /login?next=<this page>) and the request rejects.
// Live feeds (live.js) use url() and authFailed() from here as well.
//
// Sessions (docs/security.md): the cookie is HttpOnly, so the browser sends
// it and no script reads it; what the script holds is the session's CSRF
// token, sent as X-CSRF-Token with every state-changing request (weir
// refuses one with a cookie and without the token: 403). The token comes
// from the login answer (login.js keeps it in sessionStorage) and again from
// GET /api/v1/me, which whoami() asks on every load of the dashboard, so a
// reload or a second tab has it too. A 403 that names the token (the session
// changed under us, e.g. a new login in another tab) refreshes it once and
// retries.

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
const CSRF_KEY = 'weir.csrf';
let csrfToken = null;
try { csrfToken = sessionStorage.getItem(CSRF_KEY); } catch { /* storage off */ }
let mePromise = null;

/** Replaces what happens on a 401 (e.g. show a login form instead). */
export function setAuthHandler(fn) { onUnauthorized = fn; }
/** Headers added to every request (e.g. {Authorization: 'Bearer ...'}). */
export function setAuthHeaders(h) { extraHeaders = { ...h }; }
export function authFailed() { onUnauthorized(); }

function setCsrf(token) {
  csrfToken = token || null;
  try {
    if (csrfToken) sessionStorage.setItem(CSRF_KEY, csrfToken);
    else sessionStorage.removeItem(CSRF_KEY);
  } catch { /* storage off */ }
}

/** Who is using the dashboard: GET /api/v1/me ({user, role, method} and,
 *  for a cookie session, csrf_token, which is kept for later requests). */
export function whoami() {
  mePromise = get('/api/v1/me').then((me) => {
    if (me && me.csrf_token) setCsrf(me.csrf_token);
    return me;
  });
  return mePromise;
}

/** Ends the session (POST /api/v1/logout) and goes to the login page. */
export async function logout() {
  try { await post('/api/v1/logout', {}); } finally {
    setCsrf(null);
    location.assign('/login');
  }
}

const stateChanging = (m) => !['GET', 'HEAD', 'OPTIONS'].includes(m);
const csrfRefused = (status, data) => status === 403 && data && /CSRF/i.test(data.error || '');

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
  if (stateChanging(method)) {
    if (!csrfToken && mePromise) await mePromise.catch(() => null);
    if (csrfToken) init.headers['X-CSRF-Token'] = csrfToken;
  }
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
  if (csrfRefused(res.status, data) && !opts.csrfRetried) {
    const me = await whoami().catch(() => null);
    if (me && me.csrf_token) return request(method, path, body, { ...opts, csrfRetried: true });
  }
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { error: data }, path);
  return data;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);
