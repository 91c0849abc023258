/**
 * Issue 14, serving isolated from training and the smaller HTTP items, on the real server (no broker needed):
 * 415 with its own code, 431 with a JSON body, server timeouts, the per-client predict rate limit, the record cap,
 * chunked prediction that keeps /livez fast, the source id rule on the block route, labels always in range.
 */
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { Sidecar } from '../../src/sidecar';
import { ERROR_CODES, TayguardError } from '../../src/errors';
import { labelOf } from '../../src/model/probe';

const TOKEN = 'unit-admin-token-0123456789';

async function serve(env: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-limits-'));
  const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, TEXT_HASH_DIM: '16384', ADMIN_TOKEN: TOKEN, ...env });
  const sidecar = new Sidecar({ config, logger: createLogger('silent') });
  await sidecar.init();
  await sidecar.listen();
  return { sidecar, base: `http://127.0.0.1:${sidecar.port}` };
}

/** Send raw bytes and read the raw answer (for what fetch itself refuses to send). */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let out = '';
    socket.on('data', (c) => (out += c.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

const records = (n: number) => ({ records: Array.from({ length: n }, (_, i) => ({ text: `free money offer number ${i} meeting agenda lunch` })) });
const postJson = (base: string, p: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('HTTP limits', () => {
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    ({ sidecar, base } = await serve({ PREDICT_RATE_LIMIT: '3000', PREDICT_MAX_RECORDS: '1000' }));
  });
  afterAll(() => sidecar.stop());

  it('answers a body that is not JSON with 415 UNSUPPORTED_MEDIA_TYPE (not REQUEST_INVALID)', async () => {
    const res = await fetch(`${base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const latin1 = await fetch(`${base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json; charset=koi8-r' }, body: '{}' });
    expect(latin1.status).toBe(415);
    expect(((await latin1.json()) as any).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers oversized headers with 431 and a JSON body', async () => {
    const port = sidecar.port;
    const answer = await rawRequest(port, `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body.error.code).toBe('HEADERS_TOO_LARGE');
  });

  it('sets server timeouts (headers, request, keep-alive)', () => {
    const server = (sidecar as unknown as { server: Server }).server;
    expect(server.headersTimeout).toBe(10_000);
    expect(server.requestTimeout).toBe(15_000);
    expect(server.keepAliveTimeout).toBe(5_000);
  });

  it('caps records per request at PREDICT_MAX_RECORDS', async () => {
    const res = await postJson(base, '/v1/predict', records(1001));
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.message).toMatch(/PREDICT_MAX_RECORDS/);
  });

  it('keeps /livez under 100 ms while 1,000-record predictions run (chunks yield to the event loop)', async () => {
    const free = await serve({ PREDICT_RATE_LIMIT: '0' });
    try {
      await livezUnderLoad(free.base);
    } finally {
      await free.sidecar.stop();
    }
  });

  async function livezUnderLoad(base: string) {
    // Warm up tfjs kernels and the JIT first: the first prediction of a process is not the steady state.
    expect((await postJson(base, '/v1/predict', records(64))).status).toBe(200);
    const load = Promise.all(Array.from({ length: 4 }, () => postJson(base, '/v1/predict', records(1000)).then((r) => r.status)));
    await new Promise((r) => setTimeout(r, 30));
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      expect((await fetch(`${base}/livez`)).status).toBe(200);
      times.push(performance.now() - t0);
    }
    expect(await load).toEqual([200, 200, 200, 200]);
    // Alone on the machine every sample is under 100 ms; the suite shares 2 cores with another jest worker, so the
    // bound is on the median with a loose maximum. Before chunking, each sample waited for a whole 1,000-record
    // request (~200 ms or more), so both bounds failed.
    times.sort((a, b) => a - b);
    expect(times[Math.floor(times.length / 2)]).toBeLessThan(100);
    expect(times[times.length - 1]).toBeLessThan(1000);
    if (process.env.TAYGUARD_TIMINGS) process.stdout.write(`livez under load, ms: ${times.map((t) => t.toFixed(1)).join(' ')}\n`);
  }

  it('rate-limits predicted records per client with 429 RATE_LIMITED and Retry-After', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // a fresh one-second window
    // Concurrent, so that all five arrive within one second however slow predictions are on a busy machine.
    const answers = await Promise.all(Array.from({ length: 5 }, () => postJson(base, '/v1/predict', records(1000))));
    const statuses = answers.map((r) => r.status).sort();
    const limited = answers.find((r) => r.status === 429);
    await Promise.all(answers.filter((r) => r !== limited).map((r) => r.arrayBuffer()));
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(((await limited!.json()) as any).error.code).toBe('RATE_LIMITED');
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('enforces the 1–256 character source rule on the block route', async () => {
    const body = JSON.stringify({ operator: 'ops', note: 'test' });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
    const long = await fetch(`${base}/v1/admin/sources/${'s'.repeat(257)}/block`, { method: 'POST', headers, body });
    expect(long.status).toBe(400);
    expect(((await long.json()) as any).error.code).toBe('REQUEST_INVALID');
    const ok = await fetch(`${base}/v1/admin/sources/${'s'.repeat(256)}/block`, { method: 'POST', headers, body });
    expect(ok.status).toBe(200);
  });

  it('does not export a training loss of 0 under DP without a canary set (it would not be private, nor true)', async () => {
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(text).not.toMatch(/^tayguard_training_loss /m);
    expect(text).toMatch(/^tayguard_checkpoint_failures_total 0/m);
  });

  it('reports readiness reasons on /readyz', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ reasons: [] , joined: false });
  });
});

describe('labels are always in 0 … NUM_CLASSES-1', () => {
  it('refuses NaN probabilities with MODEL_UNHEALTHY instead of label -1', () => {
    expect(labelOf([0.2, 0.8], 2)).toBe(1);
    expect(labelOf([0.5, 0.5], 2)).toBe(0);
    for (const bad of [[NaN, NaN], [0.5], [Infinity, 0], [0.9, 0.9]]) {
      try {
        labelOf(bad, 2);
        throw new Error('no throw');
      } catch (e) {
        expect(TayguardError.is(e) && e.code).toBe('MODEL_UNHEALTHY');
      }
    }
  });
});

describe('config refusals', () => {
  it('refuses a blank or whitespace-padded ADMIN_TOKEN', () => {
    for (const token of [' '.repeat(16), '\t'.repeat(20), ` ${'a'.repeat(20)} `]) {
      expect(() => loadConfig({ KAFKA_BROKERS: 'x:1', ADMIN_TOKEN: token })).toThrow(/ADMIN_TOKEN/);
    }
    expect(loadConfig({ KAFKA_BROKERS: 'x:1', ADMIN_TOKEN: 'a'.repeat(16) }).http.adminToken).toBe('a'.repeat(16));
  });

  it('lists every new error code in ERROR_CODES', () => {
    for (const code of ['PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'HEADERS_TOO_LARGE', 'RATE_LIMITED', 'MODEL_UNHEALTHY', 'OFFSETS_RESET', 'CONSUMER_STOPPED', 'QUARANTINE_FLUSH_FAILED', 'SHUTDOWN_INCOMPLETE']) {
      expect(ERROR_CODES).toContain(code);
    }
  });
});
