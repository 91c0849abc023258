/**
 * CHECKPOINT_MAX_BYTES (src/checkpoint/budget.ts): start-up refuses a configuration whose worst-case checkpoint
 * exceeds it, a sidecar fed maximal records writes checkpoints within it, and the store refuses to write one over it.
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar } from '../../src/sidecar';
import { CheckpointStore } from '../../src/checkpoint/store';
import { configModelParams, configScreenStateBytes, worstCaseCheckpoint } from '../../src/checkpoint/budget';
import { hasCode } from '../../core/errors';
import type { ConsumedBatch, BatchControl } from '../../src/ingest/client';
import type { RawMessage } from '../../core/record';

const MiB = 1024 * 1024;
interface Internals {
  buildPipeline(sink: { send(): Promise<void> }): void;
  handleBatch(batch: ConsumedBatch, control: BatchControl): Promise<void>;
}

describe('CHECKPOINT_MAX_BYTES', () => {
  it('defaults to 384 MiB, and the default configuration\'s worst case fits it', () => {
    const config = loadConfig({ KAFKA_BROKERS: 'localhost:9092' });
    expect(config.ops.checkpointBudgetBytes).toBe(384 * MiB);
    const w = worstCaseCheckpoint(config, { modelParams: configModelParams(config)!, screenStateBytes: configScreenStateBytes(config) });
    expect(w.poolSlots).toBe(51 * 32);
    expect(w.total).toBeLessThan(0.7 * config.ops.checkpointBudgetBytes);
    expect(() => loadConfig({ KAFKA_BROKERS: 'localhost:9092', CHECKPOINT_MAX_BYTES: String(1024 * MiB) })).toThrow(/CHECKPOINT_MAX_BYTES/);
  });

  it('refuses to start when the worst case exceeds it, naming what to lower', async () => {
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), 'tg-ckb-')), CHECKPOINT_MAX_BYTES: String(MiB), SCREENS: 'none' });
    const err = await createSidecar(config, createLogger('silent')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'CHECKPOINT_TOO_LARGE')).toBe(true);
    const message = (err as Error).message;
    for (const knob of ['CHECKPOINT_MAX_BYTES', 'TEXT_READ_CHARS', 'WINDOW_STEPS', 'STEP_EVERY_RECORDS', 'SCREEN_STATE_BYTES', 'DEDUP_IDS_KEPT']) expect(message).toContain(knob);
    expect(message).toMatch(/DP pool 42\.6 MiB \(1632 slots/);
  });

  it('a sidecar fed records as large as the schema admits writes every checkpoint within the budget', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-ckb-'));
    const env = {
      KAFKA_BROKERS: '127.0.0.1:1',
      CHECKPOINT_DIR: dir,
      TEXT_HASH_DIM: '256',
      MAX_TEXT_CHARS: '2000',
      STEP_EVERY_RECORDS: '8',
      BATCH_SIZE: '8',
      WINDOW_STEPS: '5',
      SAMPLE_RATE: '0.2',
      DEDUP_IDS_KEPT: '2000',
      SCREEN_STATE_BYTES: String(MiB),
      CHECKPOINT_EVERY_RECORDS: '40',
      SCREENS: 'none',
      DP_SEED: 'ckb',
      ACCOUNTANT: 'rdp',
    };
    const probe = loadConfig(env);
    const worst = worstCaseCheckpoint(probe, { modelParams: configModelParams(probe)!, screenStateBytes: configScreenStateBytes(probe) });
    const budget = Math.ceil(worst.total / MiB) * MiB;
    const config = loadConfig({ ...env, CHECKPOINT_MAX_BYTES: String(budget) });
    const sidecar = await createSidecar(config, createLogger('silent'));
    const internals = sidecar as unknown as Internals;
    internals.buildPipeline({ send: async () => undefined });
    const control: BatchControl = { heartbeat: async () => undefined, resolve: () => undefined, shouldContinue: () => true };
    // Every field at its limit, the text in characters JSON escapes with 6 bytes each (the slot bound's worst).
    let offset = 0;
    const batch = (n: number): ConsumedBatch => ({
      topic: config.topics.records,
      partition: 0,
      highWatermark: '1000000',
      messages: Array.from({ length: n }, (): RawMessage => {
        const i = offset++;
        const record = { id: `${i}-`.padEnd(128, 'i'), source: `${i % 50}-`.padEnd(256, 's'), label: i % 2, text: `w${i} `.padEnd(2000, '\u0001') };
        return { topic: config.topics.records, partition: 0, offset: String(i), key: null, value: Buffer.from(JSON.stringify(record)) };
      }),
    });
    let largest = 0;
    for (let k = 0; k < 12; k++) {
      await internals.handleBatch(batch(25), control);
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.tgck'))) largest = Math.max(largest, statSync(path.join(dir, f)).size);
    }
    await sidecar.checkpoint();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.tgck'))) largest = Math.max(largest, statSync(path.join(dir, f)).size);
    await sidecar.stop();
    expect(sidecar.status().lastCheckpointError).toBeNull();
    // The pool really held maximal records (most of its 48 slots at ~12 kB each), and the file stayed within budget.
    expect(largest).toBeGreaterThan(30 * 12_000);
    expect(largest).toBeLessThanOrEqual(budget);
  });

  it('the store refuses to write a checkpoint over the budget, keeping the previous one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-ckb-'));
    const store = new CheckpointStore(dir, 3, MiB);
    await store.init();
    const header = (seq: number, pad: number) => ({ seq, createdAt: new Date(0).toISOString(), pad: 'x'.repeat(pad) }) as never;
    await store.write(header(1, 1000), Buffer.alloc(1000));
    const err = await store.write(header(2, 10), Buffer.alloc(MiB)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'CHECKPOINT_TOO_LARGE')).toBe(true);
    expect((err as Error).message).toContain('CHECKPOINT_MAX_BYTES');
    expect(await store.sequences()).toEqual([1]);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});
