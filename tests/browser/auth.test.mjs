// auth.test.mjs -- the dashboard's login, logout and CSRF protection in a
// real browser (Debian's chromium, headless, playwright-core) against a real
// weir WITHOUT anonymous access: the admin password comes from
// WEIR_ADMIN_PASSWORD at first start, a viewer is added through the API.
//
// Run: WEIR_BIN=build-test/weir node --test tests/browser/auth.test.mjs
// (CTest runs it with dashboard.test.mjs as integration.test_browser);
// screenshots go to $WEIR_ARTEFACTS (default build-test/artefacts/browser),
// named auth-*. Each check waits on a condition with a deadline.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { startWeir } from './weir.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.resolve(here, '../..');
const BIN = process.env.WEIR_BIN || path.join(src, 'build-test', 'weir');
const ARTEFACTS = process.env.WEIR_ARTEFACTS || path.join(src, 'build-test', 'artefacts', 'browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const require = createRequire(import.meta.url);

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  throw new Error('playwright-core is missing: run scripts/deps.sh test (npm ci in tests/)');
}

fs.mkdirSync(ARTEFACTS, { recursive: true });

const ADMIN_PW = 'browser-admin-pw-0123';
const VIEWER_PW = 'browser-viewer-pw-0123';
const RULE_SQL = (name) =>
  `CREATE RULE ${name} AS SELECT temperature FROM sensors WHERE temperature > 0 EMIT TO 'stream:${name}_out'`;

/** A node-side session: logs in and returns a fetch with its cookie and CSRF token. */
async function session(base, username, password) {
  const r = await fetch(`${base}/api/v1/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `login ${username}: ${await r.clone().text()}`);
  const { csrf_token: csrf } = await r.json();
  const cookie = r.headers.get('set-cookie').split(';')[0];
  return async (method, p, body) => {
    const headers = { Cookie: cookie, 'X-CSRF-Token': csrf };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: json ?? text };
  };
}

describe('dashboard login, logout and CSRF', { timeout: 110000 }, () => {
  let weir, browser, context, page;
  const pageErrors = [];

  const shot = (p, name) => p.screenshot({ path: path.join(ARTEFACTS, `auth-${name}.png`), fullPage: true });
  const watch = (p) => {
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    // 401/403 answers are part of these tests; the browser logs them as failed resources.
    p.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|WebSocket/.test(m.text())) pageErrors.push(m.text()); });
  };
  async function login(p, username, password) {
    await p.fill('#login-user', username);
    await p.fill('#login-password', password);
    await p.click('#login-submit');
  }

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/deps.sh test installs Debian's chromium`);
    weir = await startWeir(BIN, ARTEFACTS, ['--set', 'auth.anonymous=false'],
      { name: 'weir-auth', env: { WEIR_ADMIN_PASSWORD: ADMIN_PW } });
    const admin = await session(weir.base, 'admin', ADMIN_PW);
    const def = await admin('POST', '/api/v1/streams', {
      name: 'sensors', source: 'mqtt:plant/+/telemetry', format: 'json', key: 'topic:2',
      timestamp: 'ts', time_format: 'ms', fields: { temperature: 'double' }, sync: 'none',
    });
    assert.ok(def.status === 201 || def.status === 200, JSON.stringify(def.body));
    const u = await admin('POST', '/api/v1/users', { name: 'vera', role: 'viewer', password: VIEWER_PW });
    assert.ok(u.status === 201 || u.status === 200, JSON.stringify(u.body));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    watch(page);
  });

  after(async () => {
    if (browser) await browser.close();
    if (weir) await weir.stop();
  });

  it('without a session the API answers 401 and / goes to the login page', async () => {
    assert.equal((await fetch(`${weir.base}/api/v1/overview`)).status, 401);
    const lp = await fetch(`${weir.base}/login`);
    assert.equal(lp.status, 200);
    assert.match(lp.headers.get('content-type'), /^text\/html/);
    assert.match(lp.headers.get('content-security-policy') || '', /script-src 'self'/);
    await page.goto(`${weir.base}/#/rules`);
    await page.waitForURL(/\/login\?next=/, { timeout: 10000 });
    assert.equal(new URL(page.url()).searchParams.get('next'), '/#/rules');
    await page.waitForSelector('#login-form');
    await shot(page, 'login');
  });

  it('a wrong password shows an error and sets no cookie', async () => {
    await login(page, 'admin', 'not-the-password');
    await page.waitForSelector('#login-error:not([hidden])', { timeout: 10000 });
    assert.match(await page.textContent('#login-error'), /wrong user name or password/i);
    assert.match(page.url(), /\/login\?next=/);
    assert.deepEqual((await context.cookies()).filter((c) => c.name === 'weir_session'), []);
    await shot(page, 'login-wrong');
  });

  it('the right password lands on the page asked for, with an HttpOnly SameSite=Strict cookie', async () => {
    await login(page, 'admin', ADMIN_PW);
    await page.waitForURL((u) => u.pathname === '/' && u.hash === '#/rules', { timeout: 10000 });
    const [c] = (await context.cookies()).filter((x) => x.name === 'weir_session');
    assert.ok(c, 'session cookie set');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('weir_session')), false, 'cookie hidden from scripts');
    await page.waitForSelector('#who-name:text("admin (admin)")', { timeout: 10000 });
    await page.waitForSelector('#logout');
    // The overview loads its data with the cookie alone (GETs need no token).
    await page.goto(`${weir.base}/#/overview`);
    await page.waitForFunction(() => document.querySelector('#ov-health')?.textContent === 'OK', null, { timeout: 10000 });
    await page.waitForSelector('#ov-streams td:text("sensors")', { timeout: 10000 });
    await shot(page, 'overview');
  });

  it('a state-changing request with the cookie but without X-CSRF-Token is refused with 403', async () => {
    const r = await page.evaluate(async (sql) => {
      const res = await fetch('/api/v1/rules', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sql, start: true }) });
      return { status: res.status, body: await res.json().catch(() => null) };
    }, RULE_SQL('nocsrf'));
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.match(r.body.error, /X-CSRF-Token/);
    // ... and so is one with a wrong token.
    const wrong = await page.evaluate(async () => (await fetch('/api/v1/logout', { method: 'POST', headers: { 'X-CSRF-Token': 'x'.repeat(43) } })).status);
    assert.equal(wrong, 403);
  });

  it('with the token the Rules page creates a rule, also after a reload that lost the stored token', async () => {
    await page.goto(`${weir.base}/#/rules`);
    await page.fill('#rule-sql', RULE_SQL('hot'));
    await page.click('#rule-create');
    await page.waitForSelector('#rules-table tr[data-rule="hot"][data-status="running"]', { timeout: 10000 });
    // The token also comes from GET /api/v1/me on each load (a new tab has an empty sessionStorage).
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.waitForSelector('#rule-sql');
    await page.fill('#rule-sql', RULE_SQL('warm'));
    await page.click('#rule-create');
    await page.waitForSelector('#rules-table tr[data-rule="warm"][data-status="running"]', { timeout: 10000 });
    assert.equal(await page.$('#rules-table tr[data-rule="nocsrf"]'), null, 'the refused rule does not exist');
    await shot(page, 'rules');
  });

  it('logout returns to the login page and the session is gone on the server', async () => {
    const [c] = (await context.cookies()).filter((x) => x.name === 'weir_session');
    const old = `weir_session=${c.value}`;
    assert.equal((await fetch(`${weir.base}/api/v1/me`, { headers: { Cookie: old } })).status, 200);
    await page.click('#logout');
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 10000 });
    assert.deepEqual((await context.cookies()).filter((x) => x.name === 'weir_session'), []);
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    assert.equal(me, 401);
    // The old cookie, replayed, no longer works either.
    assert.equal((await fetch(`${weir.base}/api/v1/me`, { headers: { Cookie: old } })).status, 401);
    await page.goto(`${weir.base}/#/overview`);
    await page.waitForURL(/\/login\?next=/, { timeout: 10000 });
    await shot(page, 'logged-out');
  });

  it('a viewer cannot create a rule from the Rules page and sees the 403 error', async () => {
    const vctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const vp = await vctx.newPage();
      watch(vp);
      await vp.goto(`${weir.base}/login?next=${encodeURIComponent('/#/rules')}`);
      await login(vp, 'vera', VIEWER_PW);
      await vp.waitForURL((u) => u.pathname === '/' && u.hash === '#/rules', { timeout: 10000 });
      await vp.waitForSelector('#who-name:text("vera (viewer)")', { timeout: 10000 });
      // A viewer may not even read rules (docs/security.md): the list says so.
      await vp.waitForSelector('#rules-table .error', { timeout: 10000 });
      assert.match(await vp.textContent('#rules-table .error'), /not allowed: viewer/);
      await vp.fill('#rule-sql', RULE_SQL('viewers'));
      await vp.click('#rule-create');
      await vp.waitForSelector('#rule-form-msg .error', { timeout: 10000 });
      const msg = await vp.textContent('#rule-form-msg .error');
      assert.match(msg, /not allowed: viewer needs permission/);
      await shot(vp, 'viewer-denied');
    } finally {
      await vctx.close();
    }
    const admin = await session(weir.base, 'admin', ADMIN_PW);
    assert.equal((await admin('GET', '/api/v1/rules/viewers')).status, 404, 'the viewer created nothing');
  });

  it('the login page never sends the browser to another origin', async () => {
    const p = await context.newPage();
    watch(p);
    try {
      await p.goto(`${weir.base}/login?next=${encodeURIComponent('//example.com/x')}`);
      await login(p, 'admin', ADMIN_PW);
      await p.waitForURL((u) => u.origin === weir.base && u.pathname === '/', { timeout: 10000 });
      await p.waitForSelector('#logout');
    } finally {
      await p.close();
    }
  });

  it('no JavaScript errors on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
