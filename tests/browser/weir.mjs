// weir.mjs -- starts a real weir for the browser tests: free 127.0.0.1 ports,
// a fresh data directory, its log kept, and a stop that checks the exit
// status and the log for sanitizer reports (the same rules as the pytest
// fixture in tests/integration/conftest.py).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Polls cond() (async, truthy = done) until deadline; throws with `what`. */
export async function waitFor(cond, what, timeoutMs = 10000, intervalMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await cond(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// extra: more `weir serve` arguments; by default the loopback profile
// without credentials (auth.anonymous), as `make run` starts it.
// opts.env: more environment (e.g. WEIR_ADMIN_PASSWORD for the first start);
// opts.name: the log's file name prefix (default weir).
export async function startWeir(bin, artefacts, extra = ['--set', 'auth.anonymous=true'], opts = {}) {
  if (!fs.existsSync(bin)) throw new Error(`weir binary ${bin} not found: set WEIR_BIN`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-browser-'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const mqttPort = await freePort();
    let httpPort = await freePort();
    while (httpPort === mqttPort) httpPort = await freePort();
    const logPath = path.join(artefacts, `${opts.name || 'weir'}-${attempt}.log`);
    const log = fs.openSync(logPath, 'w');
    const env = { ...process.env, ...(opts.env || {}) };
    env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0';
    env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1';
    const proc = spawn(bin, ['serve', '--data', path.join(dir, `data-${attempt}`),
      '--mqtt', `127.0.0.1:${mqttPort}`, '--http', `127.0.0.1:${httpPort}`, '--log-level', 'info', ...extra],
    { stdio: ['ignore', log, log], env });
    let exited = null;
    proc.on('exit', (code, sig) => { exited = { code, sig }; });
    const base = `http://127.0.0.1:${httpPort}`;
    try {
      await waitFor(async () => {
        if (exited) throw new Error(`weir exited ${JSON.stringify(exited)}`);
        const r = await fetch(`${base}/healthz`);
        return r.ok;
      }, 'weir /healthz', 20000);
    } catch (e) {
      const text = fs.readFileSync(logPath, 'utf8');
      if (!exited) proc.kill('SIGKILL');
      if (/address already in use/i.test(text) && attempt < 2) continue;
      throw new Error(`${e.message}\n${text.slice(-4000)}`);
    }
    return {
      base, httpPort, mqttPort, dir, logPath, proc,
      async stop() {
        if (!exited) {
          proc.kill('SIGTERM');
          await waitFor(() => exited, 'weir to exit after SIGTERM', 15000).catch(() => proc.kill('SIGKILL'));
        }
        const text = fs.readFileSync(logPath, 'utf8');
        fs.rmSync(dir, { recursive: true, force: true });
        const bad = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)/.exec(text);
        if (bad) throw new Error(`sanitizer report in ${logPath}: ${bad[1]}`);
        if (!exited || exited.code !== 0) throw new Error(`weir exit ${JSON.stringify(exited)}; log ${logPath}`);
      },
    };
  }
  throw new Error('could not start weir');
}

/** fetch + JSON for the API. */
export async function api(base, method, p, body, type = 'application/json') {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = type;
  }
  const r = await fetch(base + p, init);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: json ?? text, headers: r.headers };
}
