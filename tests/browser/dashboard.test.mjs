// dashboard.test.mjs -- the dashboard in a real browser (Debian's chromium,
// headless, driven by playwright-core) against a real weir started here on
// free 127.0.0.1 ports, with real MQTT clients (mosquitto_pub/_sub).
//
// Run: WEIR_BIN=build-test/weir node --test tests/browser/   (CTest does it
// as integration.test_browser; screenshots go to $WEIR_ARTEFACTS, default
// build-test/artefacts/browser). Each check waits on a condition with a
// deadline; nothing sleeps to synchronise.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { startWeir, waitFor, api } from './weir.mjs';

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

describe('dashboard', { timeout: 110000 }, () => {
  let weir, browser, context, page;
  const children = [];
  const pageErrors = [];

  const shot = (name) => page.screenshot({ path: path.join(ARTEFACTS, `${name}.png`), fullPage: true });
  const goto = async (hash) => {
    await page.goto(`${weir.base}/${hash}`);
    await page.waitForLoadState('domcontentloaded');
  };
  const attr = (sel, name) => page.$eval(sel, (e, n) => e.getAttribute(n), name).catch(() => null);

  function child(cmd, args, opts = {}) {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], ...opts });
    p.stderrText = '';
    p.stderr.on('data', (d) => { p.stderrText += d; });
    children.push(p);
    return p;
  }

  // Publishes JSON readings for keys m1, m2 at 20 Hz through mosquitto_pub -l
  // (one line per message); returns the process.
  function publisher() {
    const pubs = ['m1', 'm2'].map((k) => child('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(weir.mqttPort),
      '-i', `pub-${k}`, '-t', `plant/${k}/telemetry`, '-l', '-q', '0']));
    let i = 0;
    const timer = setInterval(() => {
      i++;
      pubs.forEach((p, j) => {
        if (p.stdin.writable) {
          p.stdin.write(JSON.stringify({ ts: Date.now(), temperature: 20 + j * 5 + Math.sin(i / 10), humidity: 40 + j }) + '\n');
        }
      });
    }, 50);
    return { stop() { clearInterval(timer); for (const p of pubs) p.stdin.end(); } };
  }

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/deps.sh test installs Debian's chromium`);
    weir = await startWeir(BIN, ARTEFACTS);
    const def = await api(weir.base, 'POST', '/api/v1/streams', {
      name: 'sensors', source: 'mqtt:plant/+/telemetry', format: 'json', key: 'topic:2',
      timestamp: 'ts', time_format: 'ms', fields: { temperature: 'double', humidity: 'double' }, sync: 'none',
    });
    assert.ok(def.status === 201 || def.status === 200, JSON.stringify(def.body));
    // Six hours of history for key m1, one reading a minute, older than the live data.
    const now = Date.now();
    const rows = [];
    for (let m = 360; m >= 2; m--) rows.push(JSON.stringify({ ts: now - m * 60000, temperature: 10 + (m % 30), humidity: 50, device: 'm1' }));
    const ing = await api(weir.base, 'POST', '/api/v1/streams/sensors/records', rows.join('\n'), 'application/x-ndjson');
    assert.equal(ing.status, 200, JSON.stringify(ing.body));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|WebSocket/.test(m.text())) pageErrors.push(m.text()); });
  });

  after(async () => {
    for (const p of children) if (p.exitCode === null) p.kill('SIGTERM');
    if (browser) await browser.close();
    if (weir) await weir.stop();
  });

  it('serves the dashboard with content types and ETags, API routes intact', async () => {
    const index = await fetch(`${weir.base}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /^text\/html/);
    assert.match(index.headers.get('content-security-policy') || '', /script-src 'self'/);
    const etag = index.headers.get('etag');
    assert.ok(etag, 'ETag on /');
    const again = await fetch(`${weir.base}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    const js = await fetch(`${weir.base}/assets/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const up = await fetch(`${weir.base}/assets/uplot.min.js`);
    assert.equal(up.status, 200, 'uPlot embedded (web/node_modules present at build time)');
    assert.equal((await fetch(`${weir.base}/assets/nope.js`)).status, 404);
    assert.equal((await fetch(`${weir.base}/healthz`)).status, 200);
    assert.match((await (await fetch(`${weir.base}/metrics`)).text()), /weir_mqtt_connections/);
  });

  it('overview loads in under a second and shows health, uptime and storage', async () => {
    const t0 = Date.now();
    await goto('#/overview');
    await page.waitForFunction(() => document.querySelector('#ov-health')?.textContent === 'OK', null, { timeout: 10000 });
    const loadMs = Date.now() - t0;
    const loadEnd = () => page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
    // The first navigation of a fresh browser also starts its renderer, so
    // it only gets a loose bound; the requirement (under 1 s from loopback)
    // is checked on a plain reload, as a user opening the page again sees it.
    const cold = await loadEnd();
    assert.ok(cold < 3000, `first page load event at ${cold} ms`);
    assert.ok(loadMs < 5000, `overview filled after ${loadMs} ms`);
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#ov-health')?.textContent === 'OK', null, { timeout: 10000 });
    const warm = await loadEnd();
    console.log(`overview load event: first ${cold.toFixed(0)} ms, reload ${warm.toFixed(0)} ms`);
    assert.ok(warm < 1000, `page load event at ${warm} ms on reload (want < 1000)`);
    await page.waitForSelector('#ov-streams td:text("sensors")', { timeout: 10000 });
    assert.match(await page.textContent('#ov-uptime'), /\d+s|\d+m/);
    // The anonymous profile (auth.anonymous, loopback) has no session to log out of.
    await page.waitForSelector('#who-name:text("anonymous (loopback)")', { timeout: 10000 });
    assert.equal(await page.$('#logout'), null);
    await page.waitForSelector('#ingest-chart canvas', { timeout: 5000 });
    await shot('overview');
  });

  it('a stream chart receives live points from MQTT', async () => {
    await goto('#/streams/sensors');
    await page.waitForSelector('#field-picker input[value="temperature"]', { timeout: 10000 });
    const pub = publisher();
    try {
      await waitFor(async () => Number(await attr('#stream-chart', 'data-points')) >= 20,
        'live points in the stream chart', 15000);
      const series = await attr('#stream-chart', 'data-series');
      assert.match(series, /m1\/temperature/);
      assert.match(series, /m2\/temperature/);
      assert.equal(await attr('#stream-chart', 'data-mode'), 'live');
      const before = Number(await attr('#stream-chart', 'data-points'));
      await waitFor(async () => Number(await attr('#stream-chart', 'data-points')) > before + 10,
        'more live points', 10000);
      await waitFor(async () => (await page.$$('#records-table tbody tr')).length >= 10, 'recent records', 5000);
      // Smooth at 20 Hz per key: the chart redraws at least 10 times a
      // second, and a redraw costs well under a frame.
      const d0 = Number(await attr('#stream-chart', 'data-draws'));
      const t0 = Date.now();
      await waitFor(async () => Date.now() - t0 >= 1000, 'one second of drawing', 3000);
      const rate = (Number(await attr('#stream-chart', 'data-draws')) - d0) / ((Date.now() - t0) / 1000);
      assert.ok(rate >= 10, `chart redraws ${rate.toFixed(1)}/s while live`);
      const avg = Number(await attr('#stream-chart', 'data-draw-avg-ms'));
      assert.ok(avg < 33, `a redraw takes ${avg} ms on average`);
      await page.waitForSelector('#stream-chart canvas');
      await shot('stream-live');
    } finally { pub.stop(); }
  });

  it('the history range switches the chart to the series API and back', async () => {
    await goto('#/streams/sensors');
    await page.waitForSelector('#field-picker input[value="temperature"]', { timeout: 10000 });
    await page.click('button[data-range="1h"]');
    await waitFor(async () => (await attr('#stream-chart', 'data-mode')) === 'history' &&
      Number(await attr('#stream-chart', 'data-points')) > 0, 'a 1h history chart', 10000);
    const from1h = Number(await attr('#stream-chart', 'data-from'));
    const to1h = Number(await attr('#stream-chart', 'data-to'));
    assert.ok(Math.abs((to1h - from1h) - 3600e3) < 1000, `1h range: ${from1h}..${to1h}`);
    const points1h = Number(await attr('#stream-chart', 'data-points'));
    await page.click('button[data-range="6h"]');
    await waitFor(async () => Number(await attr('#stream-chart', 'data-from')) < from1h - 4 * 3600e3,
      'the 6h range', 10000);
    const points6h = Number(await attr('#stream-chart', 'data-points'));
    assert.ok(points6h > 0 && points6h !== points1h, `6h buckets ${points6h} vs 1h ${points1h}`);
    assert.match(await page.inputValue('#range-from'), /^\d{4}-\d\d-\d\dT/);
    await shot('stream-history');
    await page.click('button[data-range="live"]');
    await waitFor(async () => (await attr('#stream-chart', 'data-mode')) === 'live', 'back to live', 5000);
  });

  it('a rule created from SQL appears running', async () => {
    await goto('#/rules');
    await page.fill('#rule-sql', "CREATE RULE hot AS SELECT temperature FROM sensors WHERE temperature > 0 EMIT TO 'stream:hot_out'");
    await page.click('#rule-create');
    await page.waitForSelector('#rules-table tr[data-rule="hot"][data-status="running"]', { timeout: 10000 });
    await shot('rules');
    // Its live output page: rows arrive while readings are published.
    await goto('#/rules/hot');
    const pub = publisher();
    try {
      await waitFor(async () => (await page.$$('#rule-output tbody tr')).length > 0, 'rule output rows', 15000);
      await shot('rule-live');
    } finally { pub.stop(); }
  });

  it('a rule is stopped, started and deleted from its row', async () => {
    await goto('#/rules');
    const row = '#rules-table tr[data-rule="hot"]';
    await page.waitForSelector(`${row}[data-status="running"]`, { timeout: 10000 });
    await page.click(`${row} button:text("Stop")`);
    await page.waitForSelector(`${row}[data-status="stopped"]`, { timeout: 10000 });
    await page.click(`${row} button:text("Start")`);
    await page.waitForSelector(`${row}[data-status="running"]`, { timeout: 10000 });
    page.once('dialog', (d) => d.accept());
    await page.click(`${row} button:text("Delete")`);
    await page.waitForSelector(row, { state: 'detached', timeout: 10000 });
    const r = await api(weir.base, 'GET', '/api/v1/rules/hot');
    assert.equal(r.status, 404);
  });

  it('invalid SQL shows its error position inline', async () => {
    await goto('#/rules');
    await page.fill('#rule-sql', "CREATE RULE bad AS SELECT temperature,\n  FROM sensors EMIT TO 'stream:bad_out'");
    await page.click('#rule-create');
    await page.waitForSelector('#sql-error', { timeout: 10000 });
    assert.equal(await attr('#sql-error', 'data-line'), '2');
    assert.equal(await attr('#sql-error', 'data-column'), '3');
    assert.match(await page.textContent('#sql-error-pos'), /line 2, column 3/);
    assert.match(await page.textContent('#sql-error pre'), /FROM sensors[^\n]*\n  \^/);
    await shot('rules-error');
  });

  it('the latency page shows the latest probe result', async () => {
    const probeHelp = spawnSync(BIN, ['probe', '--help'], { encoding: 'utf8' });
    if (probeHelp.status === 0) {
      // A short real measurement: 4 devices at 20 msg/s for 1.5 s, every path.
      const p = spawnSync(BIN, ['probe', '--http', weir.base, '--mqtt', `127.0.0.1:${weir.mqttPort}`,
        '--devices', '4', '--rate', '20', '--duration', '1.5', '--drain', '2', '--sync', 'none'],
      { encoding: 'utf8', timeout: 60000 });
      assert.equal(p.status, 0, `weir probe: ${p.stderr}\n${p.stdout}`);
    } else {
      // No `weir probe` in this tree yet: post a result in its documented shape.
      const metric = (base) => ({ n: 100, min: base, avg: base * 1.5, p95: base * 3, p99: base * 4, max: base * 6, std: base / 2 });
      const names = ['DPC', 'DCD', 'DDC', 'DCS', 'LCDC', 'LPDS', 'LPS', 'DRL'];
      const res = await api(weir.base, 'POST', '/api/v1/probe/results', {
        id: 'browser-test', started: new Date().toISOString(), options: { count: 100, qos: 1 },
        metrics: Object.fromEntries(names.map((n, i) => [n, metric(0.1 * (i + 1))])),
        histograms: Object.fromEntries(names.map((n) => [n, { bounds_ms: [0.1, 0.2, 0.5, 1, 2, 5], counts: [3, 20, 40, 25, 10, 2] }])),
      });
      assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.body));
    }
    await goto('#/latency');
    await page.waitForSelector('#latency-table tr[data-metric="DPC"]', { timeout: 10000 });
    await waitFor(async () => /\d/.test(await page.textContent('#latency-table tr[data-metric="DPC"] td:nth-child(3)')),
      'DPC min filled', 10000);
    for (const m of ['DCD', 'LPDS', 'LPS']) assert.ok(await page.$(`#latency-table tr[data-metric="${m}"]`), m);
    await page.waitForSelector('[data-histogram] canvas', { timeout: 10000 });
    await shot('latency');
  });

  it('the devices page lists a connected mosquitto_sub client', async () => {
    child('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(weir.mqttPort), '-i', 'dash-sub', '-t', 'plant/#', '-q', '1']);
    await goto('#/devices');
    await page.waitForSelector('#clients-table tr[data-client="dash-sub"]', { timeout: 10000 });
    // Connected may be seen before SUBSCRIBE is; the page polls every 2 s.
    await waitFor(async () => /plant\/# \(q1\)/.test(await page.textContent('#clients-table tr[data-client="dash-sub"]')),
      'the subscription of dash-sub', 10000);
    assert.match(await page.textContent('#clients-table tr[data-client="dash-sub"]'), /127\.0\.0\.1:\d+/);
    await shot('devices');
  });

  it('a full live buffer (20,000 points, 10 series) still redraws at 20+ frames per second', async () => {
    await goto('#/overview');
    const r = await page.evaluate(async () => {
      const { TimeChart } = await import('/assets/chart.js');
      const el = document.createElement('div');
      document.body.append(el);
      const c = new TimeChart(el, { windowMs: 60000 });
      const now = Date.now();
      for (let i = 0; i < 20000; i++) c.push(`k${i % 10}/v`, now - 59000 + i * 2.9, Math.sin(i / 50));
      await new Promise((res) => {
        const t0 = performance.now();
        const tick = () => (Number(el.dataset.draws) >= 30 || performance.now() - t0 > 8000 ? res() : requestAnimationFrame(tick));
        tick();
      });
      const out = { draws: Number(el.dataset.draws), avg: Number(el.dataset.drawAvgMs), points: Number(el.dataset.points) };
      c.destroy();
      el.remove();
      return out;
    });
    assert.ok(r.points >= 19000, `points kept: ${r.points}`);
    assert.ok(r.draws >= 30, `draws: ${r.draws}`);
    // Software rendering (no GPU here), on a machine shared with other tests.
    assert.ok(r.avg < 50, `a redraw of 20,000 points takes ${r.avg} ms on average`);
  });

  it('a tablet-sized viewport keeps the pages usable', async () => {
    await page.setViewportSize({ width: 768, height: 1024 });
    const pages = [['#/overview', '#ov-streams tbody tr'], ['#/streams', '#streams-table tbody tr'],
      ['#/streams/sensors', '#stream-chart canvas'], ['#/rules', '#rules-table tbody tr'],
      ['#/latency', '#latency-table tbody tr'], ['#/devices', '#clients-table tbody tr']];
    for (const [hash, ready] of pages) {
      await goto(hash);
      await page.waitForSelector(ready, { timeout: 10000 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash}: page wider than the viewport by ${overflow}px`);
    }
    await goto('#/streams/sensors');
    await page.waitForSelector('#stream-chart canvas', { timeout: 10000 });
    await shot('tablet-stream');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('no JavaScript errors on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
