// screenshot.mjs -- the README's picture of the dashboard: starts
// `weir serve --demo` (the climate replay and its rule) on free loopback
// ports, lets the replay run, and saves the stream page of `climate` with
// its live chart to docs/img/dashboard.png (and the overview next to it).
//   WEIR_BIN=build/weir node tests/browser/screenshot.mjs
// Not a test; run it by hand when the dashboard's look changes.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { freePort, waitFor } from './weir.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.resolve(here, '../..');
const BIN = process.env.WEIR_BIN || path.join(src, 'build', 'weir');
const OUT = path.join(src, 'docs', 'img');
const { chromium } = createRequire(import.meta.url)('playwright-core');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-shot-'));
const mqtt = await freePort();
const http = await freePort();
const log = fs.openSync(path.join(dir, 'weir.log'), 'w');
const weir = spawn(BIN, ['serve', '--demo', '--data', path.join(dir, 'data'), '--mqtt', `127.0.0.1:${mqtt}`,
  '--http', `127.0.0.1:${http}`, '--set', 'auth.anonymous=true'], { cwd: src, stdio: ['ignore', log, log] });
const base = `http://127.0.0.1:${http}`;
let browser;
try {
  await waitFor(async () => (await fetch(`${base}/healthz`)).ok, 'weir', 20000);
  await waitFor(async () => {
    const r = await (await fetch(`${base}/api/v1/streams/climate`)).json();
    return r.records > 300;
  }, 'the demo replay to fill the climate stream', 60000, 500);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  fs.mkdirSync(OUT, { recursive: true });
  await page.goto(`${base}/#/streams/climate`);
  await page.waitForSelector('#field-picker input[value="temperature"]');
  // Temperature only, per room: readable at a glance.
  const hum = await page.$('#field-picker input[value="humidity"]');
  if (hum && await hum.isChecked()) await hum.uncheck();
  await waitFor(async () => Number(await page.getAttribute('#stream-chart', 'data-points')) > 200, 'live points', 30000, 200);
  await page.screenshot({ path: path.join(OUT, 'dashboard.png') });
  await page.goto(`${base}/#/overview`);
  await waitFor(async () => Number(await page.getAttribute('#ingest-chart', 'data-points')) > 10, 'overview rate points', 30000, 500);
  await page.screenshot({ path: path.join(OUT, 'dashboard-overview.png') });
  console.log(`wrote ${OUT}/dashboard.png and dashboard-overview.png`);
} finally {
  if (browser) await browser.close();
  weir.kill('SIGTERM');
  await waitFor(() => weir.exitCode !== null, 'weir to exit', 15000).catch(() => weir.kill('SIGKILL'));
  fs.rmSync(dir, { recursive: true, force: true });
}
