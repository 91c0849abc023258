/**
 * `tayguard status` against a stub HTTP server, for what a healthy sidecar does not show: an endpoint behind the
 * admin token, a sidecar that is not ready, DP off, and the audit alarm's exit code. (The figures themselves are
 * checked against a real sidecar in test/integration/status.test.ts.)
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parseMetrics } from '../../src/cli/status';

const BIN = path.resolve(__dirname, '../../bin/tayguard.js');
const run = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [BIN, 'status', ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );

const MODEL = { version: 4, task: 'dense', backend: 'cpu', inputDim: 3, numClasses: 2, checkpointSeq: 4, lastCheckpointAt: null, records: { trained: 1200, quarantined: 34, skipped: 5, quarantineReasons: { echo_flood: 30, invalid_json: 4 }, quarantineStages: { echo: 30, schema: 4 }, skipReasons: { duplicate: 5 } }, gate: null };
const AUDIT_ALARM = { enabled: true, current: null, latest: { round: 2, epsilonLowerBound: 2.5, epsilonAccounted: 0.5, confidence: 0.95, correct: 30, guesses: 31, alarm: true } };

describe('tayguard status (stub sidecar)', () => {
  let server: Server;
  let base: string;
  const seen: (string | undefined)[] = [];
  let audit: { status: number; body: unknown } = { status: 401, body: { error: { code: 'UNAUTHORIZED', message: 'send Authorization: Bearer <ADMIN_TOKEN>' } } };

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      const send = (status: number, body: unknown, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      if (req.url === '/readyz') send(503, { status: 'not ready', joined: false, modelLoaded: true, stopping: false, reasons: [{ code: 'BROKER_UNAVAILABLE', message: 'no successful broker request for 12 s: check KAFKA_BROKERS' }] });
      else if (req.url === '/v1/model') send(200, MODEL);
      else if (req.url === '/v1/privacy/budget') send(200, { unit: 'record', epsilon: null, mechanism: 'none' });
      else if (req.url === '/v1/privacy/audit') send(audit.status, audit.body);
      else if (req.url === '/metrics') send(200, 'tayguard_consumer_lag{topic="t",partition="0"} 7\ntayguard_consumer_lag{topic="t",partition="1"} 5\n', 'text/plain');
      else send(404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('shows an endpoint behind the admin token as unavailable, with what to do, and the rest of the screen', async () => {
    const r = await run('--url', base);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`tayguard at ${base}: NOT READY (joined false, model loaded true)\n  BROKER_UNAVAILABLE: no successful broker request for 12 s: check KAFKA_BROKERS\n`);
    expect(r.stdout).toContain('1,239 handled: 1,200 trained, 34 quarantined, 5 skipped; consumer lag 12');
    expect(r.stdout).toContain('by detector: echo 30, schema 4');
    expect(r.stdout).toContain('skipped:     duplicate 5');
    expect(r.stdout).toContain('privacy    none: DP_ENABLED=false');
    expect(r.stdout).toContain('audit      unavailable (UNAUTHORIZED: needs the admin token (--token or ADMIN_TOKEN)');
    expect(seen.every((h) => h === undefined)).toBe(true);
  });

  it('sends --token as a bearer token, and exits 3 when the audit raises its alarm', async () => {
    audit = { status: 200, body: AUDIT_ALARM };
    seen.length = 0;
    const r = await run('--url', base, '--token', 'sixteen-chars-token');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((h) => h === 'Bearer sixteen-chars-token')).toBe(true);
    expect(r.stdout).toContain('round 2: empirical ε ≥ 2.500 (95%) vs accountant ε 0.500; 30/31 guesses right — ALARM');
    expect(r.code).toBe(3);
  });

  it('refuses a --url that is not a URL with exit 2', async () => {
    const r = await run('--url', 'localhost-8080');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ARGUMENT_INVALID: --url must be a URL/);
  });

  it('parses the tayguard_ series of Prometheus text, labels kept and buckets dropped', () => {
    expect(parseMetrics('# HELP x\ntayguard_a 1\ntayguard_b{l="x y"} 2.5\ntayguard_h_bucket{le="1"} 3\nother 4\n')).toEqual({ tayguard_a: 1, 'tayguard_b{l="x y"}': 2.5 });
  });
});
