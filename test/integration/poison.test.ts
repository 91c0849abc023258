/**
 * Issue 14, failures 1 and 2, against the local broker and a real `tayguard serve`: dense-model poison pills
 * (a feature of 1e20 under DP, 1e308 under plain SGD) must not stop consumption; the service keeps training
 * afterwards, every record is accounted, and predictions stay valid. On the old code the first pill stopped the
 * consumer for good (checkFiniteNorms threw out of eachBatch) and plain SGD published a NaN model.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import type { Kafka } from 'kafkajs';
import { kafkaFor, produce, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { denseRecord, poisonRecord, type StreamMessage } from '../helpers/records';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(240_000);

let broker: LocalBroker;
let kafka: Kafka;
beforeAll(async () => {
  broker = await startLocalBroker();
  kafka = kafkaFor(broker);
});
afterAll(() => broker?.stop());

const metric = async (s: SidecarProcess, re: RegExp) => Number(re.exec(await (await fetch(`${s.base}/metrics`)).text())?.[1] ?? NaN);

/** `valid` dense records with a pill after every `every`-th, then (phase 2) `after` more valid records. */
async function run(name: string, env: Record<string, string>, magnitude: number, expectCode: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tg-poison-${name}-`));
  const prefix = `poison-${name}`;
  const rng = seedrandom(name);
  const first: StreamMessage[] = [];
  let pills = 0;
  for (let i = 0; i < 600; i++) {
    first.push(denseRecord(i, rng));
    if (i % 50 === 25) first.push(poisonRecord(pills++, magnitude));
  }
  const sidecar = await startSidecar(
    {
      KAFKA_BROKERS: broker.bootstrap,
      TOPIC_PREFIX: prefix,
      GROUP_ID: `${prefix}-group`,
      CHECKPOINT_DIR: path.join(dir, 'ckpt'),
      CHECKPOINT_EVERY_RECORDS: '200',
      CHECKPOINT_INTERVAL_MS: '300',
      MODEL: 'dense',
      FEATURE_DIM: '4',
      BATCH_SIZE: '16',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      ...env,
    },
    path.join(dir, 'sidecar.log'),
  );
  try {
    await produce(kafka, `${prefix}.records`, first);
    await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= first.length, 90_000, `phase 1 handled (log: ${dir}/sidecar.log)`);
    const phase1 = (await sidecar.json('/v1/model')).detail;
    expect(total(phase1.records)).toBe(first.length);
    expect(phase1.records.quarantined).toBe(pills);
    expect(phase1.records.quarantineReasons).toEqual({ [expectCode]: pills });
    expect(phase1.records.trained).toBe(600);
    await waitFor(async () => (await sidecar.json('/v1/model')).version > 0, 30_000, 'a published version');
    const v1 = (await sidecar.json('/v1/model')).version;

    // Phase 2: the consumer is still running and the model still trains.
    const second = Array.from({ length: 400 }, (_, i) => denseRecord(1000 + i, rng));
    await produce(kafka, `${prefix}.records`, second);
    await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= first.length + second.length, 90_000, 'phase 2 handled');
    await waitFor(async () => (await sidecar.json('/v1/model')).version > v1, 30_000, 'a newer published version after the pills');
    const phase2 = (await sidecar.json('/v1/model')).detail;
    expect(phase2.records.trained).toBe(1000);
    expect((await fetch(`${sidecar.base}/readyz`)).status).toBe(200);

    const res = await fetch(`${sidecar.base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ features: [0.9, 0, 0, 0] }, { features: [-0.9, 0, 0, 0] }] }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { predictions: { label: number; probabilities: number[] }[] };
    for (const p of body.predictions) {
      expect([0, 1]).toContain(p.label);
      for (const q of p.probabilities) expect(Number.isFinite(q)).toBe(true);
    }
    return { sidecar, rollbacks: await metric(sidecar, /tayguard_step_rollbacks_total\{reason="step_error"\} (\d+)/) };
  } finally {
    sidecar.child.kill('SIGTERM');
    await sidecar.exited;
  }
}

describe('poison pills on a dense model', () => {
  it('DP (default config): features of 1e20 are quarantined at the schema and training goes on', async () => {
    await run('dp-1e20', {}, 1e20, 'feature_out_of_range');
  });

  it('plain SGD: features of 1e308 are quarantined, no NaN model is published or served', async () => {
    await run('plain-1e308', { DP_ENABLED: 'false' }, 1e308, 'feature_out_of_range');
  });

  it('DP with the schema bound raised past float32 (MAX_FEATURE_ABS=1e30): the step guard rolls the step back, the consumer goes on', async () => {
    // The pills pass the schema and reach DP steps, where their gradient norm overflows: every such step is
    // undone and alerted, the records stay counted as trained (they entered the pool), and consumption continues.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-poison-guard-'));
    const prefix = 'poison-guard';
    const rng = seedrandom('guard');
    const messages: StreamMessage[] = [];
    for (let i = 0; i < 400; i++) {
      messages.push(denseRecord(i, rng));
      if (i % 100 === 50) messages.push(poisonRecord(i, 1e20));
    }
    const sidecar = await startSidecar(
      {
        KAFKA_BROKERS: broker.bootstrap,
        TOPIC_PREFIX: prefix,
        GROUP_ID: `${prefix}-group`,
        CHECKPOINT_DIR: path.join(dir, 'ckpt'),
        CHECKPOINT_INTERVAL_MS: '300',
        CHECKPOINT_EVERY_RECORDS: '100',
        MODEL: 'dense',
        FEATURE_DIM: '4',
        BATCH_SIZE: '16',
        // Every admitted record joins each step: the pills are certain to reach a step.
        SAMPLE_RATE: '1',
        WINDOW_STEPS: '1',
        NOISE_MULTIPLIER: '5',
        EPSILON_LIMIT: '1000',
        MAX_FEATURE_ABS: '1e30',
        KAFKA_SESSION_TIMEOUT_MS: '6000',
      },
      path.join(dir, 'sidecar.log'),
    );
    try {
      await produce(kafka, `${prefix}.records`, messages);
      await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= messages.length, 90_000, `all handled (log: ${dir}/sidecar.log)`);
      const model = (await sidecar.json('/v1/model')).detail;
      expect(model.records.trained + model.records.quarantined + model.records.skipped).toBe(messages.length);
      expect(model.stepRollbacks).toBeGreaterThan(0);
      expect(await metric(sidecar, /tayguard_step_rollbacks_total\{reason="step_error"\} (\d+)/)).toBeGreaterThan(0);
      const more = Array.from({ length: 100 }, (_, i) => denseRecord(5000 + i, rng));
      await produce(kafka, `${prefix}.records`, more);
      await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= messages.length + 100, 60_000, 'more handled after the rollbacks');
      const probe = await fetch(`${sidecar.base}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ features: [1, 0, 0, 0] }] }) });
      expect(probe.status).toBe(200);
    } finally {
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
    }
  });
});
