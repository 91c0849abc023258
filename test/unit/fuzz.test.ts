/**
 * Fuzz tests (fast-check, issue 14): the record parser (filters/schema.ts) and the HTTP bodies. Every generated
 * input must be accounted for — a parsed record that satisfies the contract, or a quarantine with at least one
 * reason with a stable code — and nothing may throw; every HTTP answer must be JSON with a status below 500 and,
 * for errors, a code from ERROR_CODES. Counts are asserted, so a silently skipped input fails the test.
 */
import fc from 'fast-check';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseRecord, type SchemaLimits } from '../../filters/schema';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { Sidecar } from '../../src/sidecar';
import { ERROR_CODES } from '../../src/errors';

jest.setTimeout(120_000);

const text: SchemaLimits = { numClasses: 3, task: 'text', maxTextChars: 200, maxMessageBytes: 4096 };
const dense: SchemaLimits = { numClasses: 3, task: 'dense', featureDim: 3, maxTextChars: 200, maxMessageBytes: 4096, maxFeatureAbs: 1e6 };

/** Inputs that look like records (so the deep branches are reached), mixed with arbitrary JSON and bytes. */
const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.double(), { maxLength: 4 }));
const recordLike = fc.record(
  {
    id: fc.oneof(fc.string({ maxLength: 140 }), field),
    source: fc.oneof(fc.string({ maxLength: 300 }), fc.constant('__tayguard_x'), field),
    ts: fc.oneof(fc.integer({ min: -5, max: Number.MAX_SAFE_INTEGER }), field),
    label: fc.oneof(fc.integer({ min: -2, max: 4 }), field),
    text: fc.oneof(fc.string({ maxLength: 250 }), field),
    features: fc.oneof(fc.array(fc.oneof(fc.double(), fc.constantFrom(1e20, -1e308, 1e6, 0)), { minLength: 2, maxLength: 4 }), field),
    extra: field,
  },
  { requiredKeys: [] },
);
/** Contract-shaped records (valid unless a generated value happens to break a rule) for the accepting branch. */
const contractLike = (dense: boolean) =>
  fc
    .record({
      id: fc.string({ minLength: 1, maxLength: 130 }),
      source: fc.string({ minLength: 1, maxLength: 260 }),
      label: fc.integer({ min: 0, max: 3 }),
      payload: dense ? fc.array(fc.oneof(fc.double({ min: -2e6, max: 2e6, noNaN: true }), fc.constantFrom(1e20, 0.5)), { minLength: 3, maxLength: 3 }) : fc.string({ maxLength: 220 }),
    })
    .map(({ payload, ...r }) => Buffer.from(JSON.stringify({ ...r, ...(dense ? { features: payload } : { text: payload }) })));
const messageBytes = (dense: boolean) => fc.oneof(
  contractLike(dense),
  recordLike.map((r) => Buffer.from(JSON.stringify(r))),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 5000 }).map((s) => Buffer.from(s)),
);

describe('fuzz: record parser', () => {
  it('accounts for 10,000 generated messages per model kind: a valid record or reasons, never a throw', () => {
    for (const limits of [text, dense]) {
      let ok = 0;
      let quarantined = 0;
      fc.assert(
        fc.property(fc.option(messageBytes(limits.task === 'dense'), { nil: null, freq: 50 }), (value) => {
          const r = parseRecord({ value }, limits);
          if (r.ok) {
            ok += 1;
            const { record } = r;
            expect(typeof record.id === 'string' && record.id.length >= 1 && record.id.length <= 128).toBe(true);
            expect(record.source.length >= 1 && record.source.length <= 256).toBe(true);
            expect(Number.isInteger(record.label) && record.label >= 0 && record.label < limits.numClasses).toBe(true);
            if (limits.task === 'dense') expect(record.features?.every((f) => Number.isFinite(f) && Math.abs(f) <= 1e6)).toBe(true);
            else expect(typeof record.text).toBe('string');
          } else {
            quarantined += 1;
            expect(r.reasons.length).toBeGreaterThan(0);
            for (const reason of r.reasons) expect(reason).toEqual({ stage: 'schema', code: expect.stringMatching(/^[a-z0-9_]+$/), message: expect.any(String) });
          }
        }),
        { numRuns: 10_000, seed: limits.task === 'text' ? 14 : 41 },
      );
      expect(ok + quarantined).toBe(10_000);
      expect(ok).toBeGreaterThan(0);
    }
  });
});

describe('fuzz: HTTP bodies', () => {
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-fuzz-'));
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, TEXT_HASH_DIM: '256', ADMIN_TOKEN: 'fuzz-admin-token-0123456789', PREDICT_RATE_LIMIT: '0', HTTP_BODY_LIMIT: '16kb' });
    sidecar = new Sidecar({ config, logger: createLogger('silent') });
    await sidecar.init();
    await sidecar.listen();
    base = `http://127.0.0.1:${sidecar.port}`;
  });
  afterAll(() => sidecar.stop());

  const body = fc.oneof(
    fc.record({ records: fc.array(fc.oneof(fc.record({ text: fc.string({ maxLength: 100 }) }), fc.record({ features: fc.array(fc.double()) }), fc.jsonValue()), { maxLength: 5 }) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
    fc.string({ maxLength: 200 }),
  );
  const route = fc.constantFrom('/v1/predict', '/v1/admin/quarantine/release', '/v1/admin/sources/fuzz/block');
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/json; charset=latin2');

  it('answers 2,000 generated requests with JSON, a status below 500 and known error codes', async () => {
    let answered = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(route, body, contentType, fc.boolean(), async (p, b, type, auth) => {
        const res = await fetch(base + p, { method: 'POST', headers: { 'content-type': type, ...(auth ? { authorization: 'Bearer fuzz-admin-token-0123456789' } : {}) }, body: b });
        const json = (await res.json()) as { error?: { code: string; message: string } };
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) expect(ERROR_CODES).toContain(json.error?.code);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        answered += 1;
      }),
      { numRuns: 2000, seed: 1414 },
    );
    expect(answered).toBe(2000);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(statuses.get(415)).toBeGreaterThan(0);
  });
});
