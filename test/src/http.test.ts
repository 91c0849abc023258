import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';

// The real server on an ephemeral port, with no Kafka at all: the API must not need the broker to answer.
describe('HTTP API without a broker', () => {
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-http-'));
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, TEXT_HASH_DIM: '1024', HTTP_BODY_LIMIT: '2kb' });
    sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    base = `http://127.0.0.1:${sidecar.port}`;
  });
  afterAll(() => sidecar.stop());

  const get = (p: string) => fetch(base + p);
  const post = (p: string, body: string) => fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('is live, and not ready until the consumer joins', async () => {
    expect((await get('/livez')).status).toBe(200);
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ joined: false, modelLoaded: true });
  });

  it('sets security headers (helmet)', async () => {
    const res = await get('/livez');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('predicts with the current model', async () => {
    const res = await post('/v1/predict', JSON.stringify({ records: [{ text: 'free money' }, { text: 'see you at lunch' }] }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.modelVersion).toBe(0);
    expect(body.predictions).toHaveLength(2);
    for (const p of body.predictions) {
      expect(p.probabilities).toHaveLength(2);
      expect(p.probabilities[0] + p.probabilities[1]).toBeCloseTo(1, 5);
      expect(p.label).toBe(p.probabilities[1] > p.probabilities[0] ? 1 : 0);
    }
  });

  it.each([
    ['malformed JSON', '{"records": [', 400, 'REQUEST_INVALID'],
    ['no records', '{"records": []}', 400, 'REQUEST_INVALID'],
    ['features for a text model', '{"records": [{"features": [1,2]}]}', 400, 'REQUEST_INVALID'],
    ['a body over the limit', JSON.stringify({ records: [{ text: 'x'.repeat(5000) }] }), 413, 'PAYLOAD_TOO_LARGE'],
  ])('rejects %s with a JSON error', async (_n, body, status, code) => {
    const res = await post('/v1/predict', body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as any;
    expect(json.error.code).toBe(code);
    expect(typeof json.error.message).toBe('string');
  });

  it('says the audit is off unless AUDIT_CANARIES is set, and keeps the admin API off without ADMIN_TOKEN', async () => {
    expect(await (await get('/v1/privacy/audit')).json()).toEqual({ enabled: false, note: expect.stringMatching(/AUDIT_CANARIES/) });
    const admin = await get('/v1/admin/quarantine');
    expect(admin.status).toBe(404);
    expect(((await admin.json()) as any).error.code).toBe('ADMIN_DISABLED');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await get('/v1/nope');
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe('NOT_FOUND');
  });

  it('describes the model, including the tfjs backend in use', async () => {
    const body = (await (await get('/v1/model')).json()) as any;
    expect(body).toMatchObject({ version: 0, task: 'text', backend: expect.stringMatching(/^(wasm|cpu|tensorflow)$/), inputDim: 1024, numClasses: 2 });
  });

  it('exposes Prometheus metrics with the documented names', async () => {
    const text = await (await get('/metrics')).text();
    for (const name of ['tayguard_records_total', 'tayguard_step_duration_seconds', 'tayguard_consumer_lag', 'tayguard_process_resident_memory_bytes']) {
      expect(text).toContain(name);
    }
    // Each screen's state in bytes against its budget (the trust table is always on; 32 MiB by default).
    expect(text).toMatch(/tayguard_screen_state_bytes\{screen="trust"\} \d+/);
    expect(text).toContain(`tayguard_screen_state_budget_bytes{screen="trust"} ${32 * 1024 * 1024}`);
  });

  it('is private by default and states the guarantee: unit, adjacency, δ, accountant, mechanism, randomness', async () => {
    const body = (await (await get('/v1/privacy/budget')).json()) as any;
    expect(body).toMatchObject({
      unit: 'record',
      adjacency: expect.stringMatching(/^zero-out: one record — the messages bearing its \(source, id\) within the dedup horizon — replaced by empty messages/),
      delta: 1e-6,
      accountant: 'prv',
      epsilon: { limit: 8, spent: 0, remaining: 8, exhausted: false },
      mechanism: {
        name: 'dp-sgd',
        noiseMultiplier: 2.24,
        clipNorm: 1,
        sampleRate: 0.2,
        window: 50,
        steps: 0,
        // The defaults bound each account per step and weigh young accounts less; the statement says ε is unchanged.
        clipping: { perSource: true, influence: { matureDays: 30, minWeight: 0.1 }, note: expect.stringMatching(/an account adds at most one record's worth per step; .*younger than 30 days counts max\(0\.1, age\/30 days\).*none of this changes the ε charged/) },
      },
      randomness: 'crypto',
    });
    // Default screens: echo and toxicity judge each record alone; the always-on trust gate (blocked sources)
    // is declared cross-record because the update gate may block sources from other records' effect.
    expect(body.screening.map((s: { stage: string }) => s.stage)).toEqual(['trust']);
    expect(body.statement).toMatch(/differential privacy for each record \(the messages bearing its source and id within the dedup horizon\), under zero-out adjacency/);
    expect(body.statement).toMatch(/operator surface .* is OPEN/);
  });
});

describe('the release boundary (OPERATOR_AUTH=token)', () => {
  const token = 'operator-token-0123456789';
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-http-boundary-'));
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, TEXT_HASH_DIM: '1024', ADMIN_TOKEN: token });
    expect(config.http.operatorAuth).toBe('token'); // the default once an admin token exists
    sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    base = `http://127.0.0.1:${sidecar.port}`;
  });
  afterAll(() => sidecar.stop());
  const get = (p: string, auth?: string) => fetch(base + p, auth ? { headers: { authorization: `Bearer ${auth}` } } : {});

  /** Every number in a JSON body, with its path. */
  const numbers = (v: unknown, at = ''): [string, number][] =>
    typeof v === 'number' ? [[at, v]] : v && typeof v === 'object' ? Object.entries(v).flatMap(([k, x]) => numbers(x, `${at}.${k}`)) : [];

  it('public responses carry no record counts, batch sizes, timings or gate state', async () => {
    const model = (await (await get('/v1/model')).json()) as Record<string, unknown>;
    expect(Object.keys(model).sort()).toEqual(['backend', 'checkpointSeq', 'inputDim', 'lastCheckpointAt', 'numClasses', 'task', 'version']);
    const budget = await (await get('/v1/privacy/budget')).json();
    // Only configuration, the schedule (public: message counts) and ε may be numbers on the public surface.
    const allowed = /^\.(epsilon\.(limit|spent|remaining)|replaceOne\.(epsilon|delta)|delta|epsilonRdp|epsilonPrv|mechanism\.(noiseMultiplier|clipNorm|sampleRate|window|steps|stepEveryMessages|expectedBatchSize|clipping\.influence\.(matureDays|minWeight)))$/;
    for (const [at] of numbers(budget)) expect(at).toMatch(allowed);
    expect(JSON.stringify(budget)).not.toMatch(/"records"|"trained"|"quarantined"|"accepted"|"rejected"/);
  });

  it('keeps the history\'s counts and the gate operator-only, and the public samples to what the public endpoints show', async () => {
    const open = (await (await get('/v1/history')).json()) as any;
    expect(open.operator).toEqual({ hidden: expect.stringMatching(/operator-only/) });
    expect(open.public.length).toBeGreaterThan(0); // the start-up sample
    for (const sample of open.public) expect(Object.keys(sample).sort()).toEqual(['at', 'checkpointSeq', 'epsilonSpent', 'modelVersion', 'steps']);
    expect(JSON.stringify(open)).not.toMatch(/"records"|"trained"|"quarantined"|"accepted"|"rejected"/);
    const operator = (await (await get('/v1/history', token)).json()) as any;
    expect(operator.operator[0]).toMatchObject({ trained: 0, quarantined: 0, skipped: 0, gate: null });
    expect((await (await get('/v1/model/versions')).json()) as any).toEqual({ versions: [] });
  });

  it('puts /metrics and the model detail behind the admin token', async () => {
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(401);
    expect(((await metrics.json()) as any).error.code).toBe('UNAUTHORIZED');
    expect((await get('/metrics', 'wrong-token-wrong-token')).status).toBe(401);
    const ok = await get('/metrics', token);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('tayguard_records_total');
    const detail = (await (await get('/v1/model', token)).json()) as any;
    expect(detail.detail).toMatchObject({ records: { trained: 0, quarantined: 0, skipped: 0 }, gate: null });
    const budget = (await (await get('/v1/privacy/budget')).json()) as any;
    expect(budget.statement).toMatch(/answers only with ADMIN_TOKEN/);
  });
});

describe('HTTP API with DP turned off explicitly', () => {
  it('says mechanism "none" and epsilon null — never a number', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-http-nodp-'));
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, TEXT_HASH_DIM: '256', DP_ENABLED: 'false' });
    const sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    try {
      const body = (await (await fetch(`http://127.0.0.1:${sidecar.port}/v1/privacy/budget`)).json()) as any;
      expect(body.mechanism).toBe('none');
      expect(body.epsilon).toBeNull();
      expect(body.epsilonRdp).toBeNull();
      expect(body.statement).toMatch(/NOT differentially private/);
    } finally {
      await sidecar.stop();
    }
  });
});
