/**
 * Issue 14 guards, with real tfjs models: the step guard rolls back a step that leaves a non-finite weight, the
 * publish probe refuses such weights, an error from one record quarantines it (stage runtime) and forgets its id,
 * quarantine envelopes and the admin index are bounded in bytes, and a refused envelope never blocks the flush.
 */
import { initTf } from '../../core/tf';
import { Pipeline, type QuarantineMessage } from '../../src/pipeline';
import { PlainTrainer } from '../../train/plain';
import { StepGuard, weightsFinite } from '../../train/guard';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { Deduplicator } from '../../src/dedup';
import { OutcomeTally } from '../../src/counts';
import { createMetrics } from '../../src/metrics';
import { createLogger } from '../../src/logger';
import { probeCandidate } from '../../middleware/probe';
import { storeOriginal } from '../../src/quarantine/envelope';
import { resilientSink } from '../../src/quarantine/sink';
import { QuarantineIndex } from '../../src/admin/quarantine-index';
import type { Trainer } from '../../train/types';
import type { RawMessage } from '../../core/record';

beforeAll(async () => {
  await initTf();
});

const dense = () => new TfjsLearner(buildModel({ inputDim: 4, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('dense', 4), { learningRate: 0.5 });
let offset = 0;
const raw = (value: string | Buffer): RawMessage => ({ topic: 't', partition: 0, offset: String(offset++), key: null, value: Buffer.from(value) });
const rec = (id: string, features: number[], label = 1) => JSON.stringify({ id, source: 's', label, features });

class MemorySink {
  sent: QuarantineMessage[] = [];
  async send(messages: readonly QuarantineMessage[]) {
    this.sent.push(...messages);
  }
}

describe('step guard', () => {
  it('plain SGD on features of 1e308 (Infinity in float32; past the schema bound): the step is rolled back, weights stay finite, training goes on', async () => {
    const learner = dense();
    const metrics = createMetrics();
    const guard = new StepGuard(learner, metrics, createLogger('silent'), 1e6);
    const trainer = new PlainTrainer(learner, metrics, 2, [guard.stage()]);
    const sink = new MemorySink();
    const tally = new OutcomeTally(metrics);
    const pipeline = new Pipeline({ trainer, limits: { numClasses: 2, task: 'dense', featureDim: 4, maxTextChars: 100, maxMessageBytes: 10000, maxFeatureAbs: Infinity }, dedup: new Deduplicator(100), tally, metrics, quarantine: sink });
    await pipeline.handle(raw(rec('a', [1e308, 1e308, 1e308, 1e308])));
    await pipeline.handle(raw(rec('b', [1e308, -1e308, 1e308, 1e308], 0)));
    expect(guard.rollbacks).toBe(1);
    expect(guard.alerts[0]).toMatchObject({ reason: expect.stringMatching(/non_finite_weights|step_error/), culprits: ['a', 'b'] });
    expect(weightsFinite(learner)).toBe(true);
    await pipeline.handle(raw(rec('c', [0.5, 0, 0, 0])));
    await pipeline.handle(raw(rec('d', [-0.5, 0, 0, 0], 0)));
    expect(guard.rollbacks).toBe(1);
    expect(learner.predict([{ features: [1, 0, 0, 0] }])[0].every(Number.isFinite)).toBe(true);
    expect((await metrics.registry.getSingleMetric('tayguard_step_rollbacks_total')!.get()).values.reduce((n, v) => n + v.value, 0)).toBe(1);
  });
});

describe('publish probe', () => {
  it('refuses weights with NaN and leaves the served model as it was', () => {
    const serving = dense();
    const before = serving.snapshot();
    const bad = serving.snapshot();
    const values = new Float32Array(bad.data.buffer.slice(bad.data.byteOffset, bad.data.byteOffset + bad.data.byteLength));
    values[0] = NaN;
    expect(probeCandidate(serving, { specs: bad.specs, data: Buffer.from(values.buffer) })).toMatch(/NaN/);
    expect(serving.snapshot().data.equals(before.data)).toBe(true);
    expect(probeCandidate(serving, before)).toBeNull();
  });
});

describe('runtime failures of one record', () => {
  it('quarantine the record with stage runtime and forget its id (a re-send is not a duplicate)', async () => {
    const metrics = createMetrics();
    let fail = true;
    const trainer: Trainer = {
      mode: 'plain',
      admit: async () => {
        if (fail) throw new Error('boom in featurize');
        return { kind: 'trained' };
      },
      pass: async () => undefined,
      admitCanary: () => ({ kind: 'trained' }),
      flush: async () => undefined,
      tick: async () => undefined,
      stepsSinceCheckpoint: 0,
      markCheckpointed: () => undefined,
      progress: 0,
      exposure: 1,
      toJSON: () => null,
      budget: () => undefined,
    };
    const sink = new MemorySink();
    const tally = new OutcomeTally(metrics);
    const pipeline = new Pipeline({ trainer, limits: { numClasses: 2, task: 'dense', featureDim: 4, maxTextChars: 100, maxMessageBytes: 10000 }, dedup: new Deduplicator(100), tally, metrics, quarantine: sink });
    await pipeline.handle(raw(rec('x', [1, 2, 3, 4])));
    fail = false;
    await pipeline.handle(raw(rec('x', [1, 2, 3, 4])));
    await pipeline.flushQuarantine();
    expect(tally.counts).toMatchObject({ quarantined: 1, trained: 1, skipped: 0, quarantineStages: { runtime: 1 }, quarantineReasons: { processing_failed: 1 } });
    expect(JSON.parse(sink.sent[0].value).reasons[0]).toMatchObject({ stage: 'runtime', code: 'processing_failed', message: expect.stringContaining('boom in featurize') });
  });
});

describe('bounded bytes', () => {
  it('an envelope is at most 4/3 of the stored bytes plus a bounded header, even for control characters', () => {
    const control = Buffer.alloc(260 * 1024, 0x01); // JSON escapes each as \\u0001: 6x as text
    const stored = storeOriginal(control, 64 * 1024);
    expect(stored.truncated).toMatchObject({ originalBytes: control.length, keptBytes: 64 * 1024, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(stored.record).length).toBeLessThanOrEqual(Math.ceil((64 * 1024 * 4) / 3) + 64);
    const small = storeOriginal(Buffer.alloc(10 * 1024, 0x01), 64 * 1024);
    expect(small.truncated).toBeUndefined();
    expect(JSON.stringify(small.record).length).toBeLessThanOrEqual(Math.ceil((10 * 1024 * 4) / 3) + 64);
    expect(storeOriginal(Buffer.from('{"plain":"text"}'), 1024).record).toBe('{"plain":"text"}');
  });

  it('the pipeline stores large originals truncated with their sha256, and says so', async () => {
    const metrics = createMetrics();
    const sink = new MemorySink();
    const entries: { value: Buffer; truncated?: unknown }[] = [];
    const pipeline = new Pipeline({
      trainer: new PlainTrainer(dense(), metrics, 2),
      limits: { numClasses: 2, task: 'text', maxTextChars: 100, maxMessageBytes: 1000 },
      dedup: new Deduplicator(100),
      tally: new OutcomeTally(metrics),
      metrics,
      quarantine: sink,
      maxStoredRecordBytes: 2048,
      onQuarantine: (e) => entries.push(e),
    });
    await pipeline.handle(raw(Buffer.alloc(1024 * 1024, 0x61)));
    await pipeline.flushQuarantine();
    expect(sink.sent[0].value.length).toBeLessThan(4096);
    expect(JSON.parse(sink.sent[0].value)).toMatchObject({ reasons: [{ code: 'message_too_large' }], recordTruncated: { originalBytes: 1024 * 1024, keptBytes: 2048 } });
    expect(entries[0].value.length).toBe(2048);
  });

  it('the admin index keeps a byte budget, oldest dropped first', () => {
    const index = new QuarantineIndex({ maxBytes: 1024 * 1024 });
    for (let i = 0; i < 100; i++) index.add({ key: `t/0/${i}`, source: null, reasons: [], at: '', value: Buffer.alloc(64 * 1024), messageKey: null });
    expect(index.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(index.size).toBeLessThan(16);
    expect(index.get('t/0/99')).toBeDefined();
    expect(index.get('t/0/0')).toBeUndefined();
  });

  it('a message the broker refuses for good is sent as a minimal envelope: the flush does not fail forever', async () => {
    const sent: QuarantineMessage[] = [];
    const tooLarge = Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE', retriable: false });
    const broker = async (messages: readonly QuarantineMessage[]) => {
      if (messages.some((m) => m.value.length > 1000)) throw tooLarge;
      sent.push(...messages);
    };
    const sink = resilientSink(broker, createMetrics(), createLogger('silent'));
    const big = JSON.stringify({ record: 'x'.repeat(5000), reasons: [{ stage: 'schema', code: 'c', message: 'm' }], topic: 't', partition: 0, offset: '1', source: null, at: 'now' });
    await sink.send([{ key: 't/0/0', value: '{"record":"ok","reasons":[]}' }, { key: 't/0/1', value: big }]);
    expect(sent.map((m) => m.key)).toEqual(['t/0/0', 't/0/1']);
    expect(JSON.parse(sent[1].value)).toMatchObject({ record: null, reasons: [{ code: 'c' }], recordOmitted: { storedBytes: 5000, sha256: expect.any(String) } });
    await expect(resilientSink(async () => { throw new Error('broker down'); }, createMetrics(), createLogger('silent')).send([{ key: 'k', value: '{}' }])).rejects.toThrow('broker down');
  });
});
