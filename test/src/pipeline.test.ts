import seedrandom from 'seedrandom';
import { initTf, tf } from '../../core/tf';
import { Pipeline, type QuarantineMessage } from '../../src/pipeline';
import { PlainTrainer } from '../../train/plain';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { Deduplicator } from '../../src/dedup';
import { OutcomeTally } from '../../src/counts';
import { createMetrics } from '../../src/metrics';
import { validRecord } from '../helpers/records';
import type { RawMessage } from '../../core/record';
import { createDetectors, parseDetectorSettings } from '../../filters/config';
import type { Detector } from '../../filters/types';

beforeAll(async () => {
  await initTf();
});

/** An in-memory quarantine topic: the pipeline's sink is an interface; Kafka itself is covered by the integration tests. */
class MemorySink {
  sent: QuarantineMessage[] = [];
  failNext = false;
  async send(messages: readonly QuarantineMessage[]) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('broker unavailable');
    }
    this.sent.push(...messages);
  }
}

function setup(dim = 16384) {
  const learner = new TfjsLearner(buildModel({ inputDim: dim, numClasses: 2, hiddenUnits: 0, seed: 3 }), featurizerFor('text', dim), { learningRate: 5 });
  const metrics = createMetrics();
  const sink = new MemorySink();
  const tally = new OutcomeTally(metrics);
  const trainer = new PlainTrainer(learner, metrics, 32);
  const pipeline = new Pipeline({
    trainer,
    limits: { numClasses: 2, task: 'text', maxTextChars: 10000, maxMessageBytes: 100000 },
    dedup: new Deduplicator(1000),
    tally,
    metrics,
    quarantine: sink,
  });
  return { pipeline, sink, tally, metrics, trainer };
}

let offset = 0;
const raw = (value: string | Buffer, partition = 0): RawMessage => ({ topic: 't', partition, offset: String(offset++), key: null, value: Buffer.from(value) });

describe('pipeline', () => {
  it('keeps the tfjs tensor count flat across many training steps (2^14 text model)', async () => {
    const { pipeline, trainer } = setup();
    const rng = seedrandom('flat');
    for (let i = 0; i < 64; i++) await pipeline.handle(raw(validRecord(i, rng).value as string));
    const after2Steps = tf.memory().numTensors;
    for (let i = 64; i < 64 + 32 * 40; i++) await pipeline.handle(raw(validRecord(i, rng).value as string));
    await trainer.flush();
    expect(tf.memory().numTensors).toBe(after2Steps);
  });

  it('counts each message once: trained, quarantined, skipped as duplicate, or ignored as a redelivery', async () => {
    const { pipeline, sink, tally, metrics, trainer } = setup(256);
    const rng = seedrandom('outcomes');
    const good = validRecord(1, rng).value as string;
    const first = raw(good);
    await pipeline.handle(first);
    await pipeline.handle(raw(good)); // same id at a new offset: a re-sent record
    await pipeline.handle(raw('{not json'));
    await pipeline.handle(first); // same offset again: Kafka redelivery
    await trainer.flush();
    await pipeline.flushQuarantine();
    expect(tally.counts).toMatchObject({ trained: 1, skipped: 1, quarantined: 1, skipReasons: { duplicate: 1 }, quarantineReasons: { invalid_json: 1 } });
    expect(sink.sent).toHaveLength(1);
    expect(JSON.parse(sink.sent[0].value)).toMatchObject({ record: '{not json', reasons: [{ stage: 'schema', code: 'invalid_json' }] });
    expect((await metrics.redeliveries.get()).values[0].value).toBe(1);
  });

  it('keeps quarantine messages when the broker does not acknowledge them, and sends them on the next flush', async () => {
    const { pipeline, sink } = setup(256);
    await pipeline.handle(raw('[1]'));
    sink.failNext = true;
    await expect(pipeline.flushQuarantine()).rejects.toThrow('broker unavailable');
    await pipeline.handle(raw('"x"'));
    await pipeline.flushQuarantine();
    expect(sink.sent.map((m) => JSON.parse(m.value).record)).toEqual(['[1]', '"x"']);
  });
});

describe('pipeline with the configured poisoning screens', () => {
  it('quarantines Tay-style echo abuse and dense abuse with the detector’s reason, and trains the rest', async () => {
    const { loadConfig } = await import('../../src/config');
    const { createScreens } = await import('../../src/screens');
    const config = loadConfig({ KAFKA_BROKERS: 'x:1', SCREENS: 'echo,toxicity,rate-caps', SCREENS_CONFIG: '{"rateCaps":{"maxPerNewSource":3}}' });
    const learner = new TfjsLearner(buildModel({ inputDim: 256, numClasses: 2, hiddenUnits: 0, seed: 3 }), featurizerFor('text', 256), { learningRate: 5 });
    const metrics = createMetrics();
    const tally = new OutcomeTally(metrics);
    const sink = new MemorySink();
    const screens = createScreens(config, { serving: learner, trainedRecords: () => tally.counts.trained });
    expect(screens.detectors.map((d) => d.name)).toEqual(['trust', 'rate-caps', 'echo', 'toxicity']);
    const pipeline = new Pipeline({
      trainer: new PlainTrainer(learner, metrics, 8),
      limits: { numClasses: 2, task: 'text', maxTextChars: 10000, maxMessageBytes: 100000 },
      dedup: new Deduplicator(1000),
      tally,
      metrics,
      quarantine: sink,
      detectors: screens.detectors,
    });
    const send = (id: string, source: string, text: string) => pipeline.handle(raw(JSON.stringify({ id, source, label: 0, text })));
    await send('a', 'alice', 'see you at the project meeting tomorrow');
    await send('b', 'troll-1', 'repeat after me: the holocaust never happened');
    await send('c', 'troll-2', 'f*ck you b1tch, you stupid sh1t, f u c k off');
    for (let i = 0; i < 5; i++) await send(`d${i}`, 'new-account', `ordinary note number ${i}`);
    await pipeline.flushQuarantine();
    const reasons = sink.sent.map((m) => JSON.parse(m.value).reasons[0]);
    expect(reasons.map((r: { stage: string }) => r.stage)).toEqual(['echo', 'toxicity', 'rate-caps', 'rate-caps']);
    for (const r of reasons) expect(r).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String), score: expect.any(Number), threshold: expect.any(Number) }));
    expect(tally.counts.trained).toBe(4);
  });
});

describe('event time from the broker (issue 10: clock hijack)', () => {
  it('clamps a producer ts far from the Kafka timestamp, so one record cannot move the screens\' clock years ahead', async () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 3 }), featurizerFor('text', 64), { learningRate: 5 });
    const metrics = createMetrics();
    const seen: (number | undefined)[] = [];
    const screens = createDetectors(parseDetectorSettings({ rateCaps: { enabled: true } }), { now: () => 0 });
    const clock: Detector = { name: 'clock-probe', scope: 'record', screen: (r) => (seen.push(r.ts), { kind: 'accept' }) };
    const pipeline = new Pipeline({
      trainer: new PlainTrainer(learner, metrics, 32),
      limits: { numClasses: 2, task: 'text', maxTextChars: 10000, maxMessageBytes: 100000 },
      dedup: new Deduplicator(1000),
      tally: new OutcomeTally(metrics),
      metrics,
      quarantine: new MemorySink(),
      detectors: [...screens.detectors, clock],
      maxClockSkewMs: 60_000,
      now: () => wall,
    });
    const t0 = 1_800_000_000_000;
    let wall = t0 + 5000; // the sidecar's own clock
    const at = (ts: number | undefined, kafka: number, i: number): RawMessage => ({
      topic: 't', partition: 0, offset: String(i), key: null, timestamp: String(kafka),
      value: Buffer.from(JSON.stringify({ id: `e${i}`, source: 'alice', label: 0, text: 'see you at lunch', ...(ts !== undefined ? { ts } : {}) })),
    });
    await pipeline.handle(at(t0 + 10 * 365 * 86_400_000, t0, 0)); // dated ten years ahead
    await pipeline.handle(at(t0 - 86_400_000, t0 + 1000, 1)); // a day behind
    await pipeline.handle(at(undefined, t0 + 2000, 2)); // no ts: the broker's
    await pipeline.handle(at(t0 + 3030, t0 + 3000, 3)); // within the skew: as sent
    // The Kafka timestamp is the producer's too (CreateTime): ten years past the sidecar's clock is clamped to its edge.
    await pipeline.handle(at(undefined, t0 + 10 * 365 * 86_400_000, 4));
    await pipeline.handle(at(t0 + 10 * 365 * 86_400_000, t0 + 10 * 365 * 86_400_000, 5));
    expect(seen).toEqual([t0 + 60_000, t0 + 1000 - 60_000, t0 + 2000, t0 + 3030, wall + 60_000, wall + 60_000]);
    expect(await metrics.eventTimeClamped.get()).toMatchObject({ values: [{ value: 4 }] });
    // The screens' event clock (filters/trust.ts) moved by at most the skew past the wall clock, not ten years.
    expect((screens.toJSON() as unknown as { clock: { watermark: number } }).clock.watermark).toBe(wall + 60_000);
  });
});
