// app.js -- the dashboard's shell: a hash router over five pages.
//
// Each page module exports mount(el, params) and returns an unmount
// function that stops its timers, feeds and charts, so switching pages never
// leaves work behind. Routes: #/overview, #/streams, #/streams/<name>,
// #/rules, #/rules/<name>, #/latency, #/devices. The server only serves
// static files (index.html at /, the rest under /assets/); all data comes
// from the JSON API through api.js, which is also where authentication plugs
// in (see setAuthHandler there). The header shows who is logged in (GET
// /api/v1/me) with a logout button for a cookie session (the answer has a
// csrf_token only then); the anonymous profile (auth.anonymous, loopback
// only) shows "anonymous (loopback)" and has nothing to log out of.

import { onStatus, whoami, logout } from './api.js';
import { h } from './util.js';
import * as overview from './overview.js';
import * as streams from './streams.js';
import * as rules from './rules.js';
import * as latency from './latency.js';
import * as devices from './devices.js';

const pages = { overview, streams, rules, latency, devices };
const view = document.getElementById('view');
let unmount = null;

function route() {
  const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  const name = pages[parts[0]] ? parts[0] : 'overview';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  if (unmount) { try { unmount(); } catch (e) { console.error(e); } }
  view.replaceChildren();
  document.title = `weir · ${name}`;
  unmount = pages[name].mount(view, parts.slice(1)) || null;
}

const conn = document.getElementById('conn');
onStatus((ok, detail) => {
  conn.textContent = ok ? '● connected' : `● ${detail}`;
  conn.classList.toggle('bad', !ok);
});

const who = document.getElementById('who');
whoami().then((me) => {
  if (!me) return;
  if (me.method === 'anonymous') {
    who.replaceChildren(h('span#who-name', { title: 'auth.anonymous: no login on loopback' }, 'anonymous (loopback)'));
    return;
  }
  const name = h('span#who-name', `${me.user} (${me.role})`);
  // Only a cookie session has a CSRF token (me.method is how it began: password).
  if (me.csrf_token) {
    const out = h('button#logout', { type: 'button' }, 'Log out');
    out.addEventListener('click', () => { out.disabled = true; logout(); });
    who.replaceChildren(name, out);
  } else {
    who.replaceChildren(name);
  }
}).catch(() => { /* a 401 already went to /login; other errors show in the pages */ });

window.addEventListener('hashchange', route);
route();
