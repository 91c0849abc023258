/**
 * The budget the public surface reports is the one in the newest durable checkpoint at every moment — including
 * right after an audit round, which used to clear the cache so that the next read showed the live, not yet
 * checkpointed ledger (a crash then lowered the reported ε). The sidecar's own batch handler is driven with
 * batches (as the Kafka consumer would), so the audit's canaries ride along exactly as in production.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { Sidecar } from '../../src/sidecar';
import { CheckpointStore } from '../../src/checkpoint/store';
import { PrivacyBudget } from '../../privacy/budget';
import type { ConsumedBatch, BatchControl } from '../../src/kafka/client';
import type { RawMessage } from '../../src/record';

interface Internals {
  buildPipeline(sink: { send(): Promise<void> }): void;
  handleBatch(batch: ConsumedBatch, control: BatchControl): Promise<void>;
}

it('the public budget always equals the ledger of the checkpoint it names, also after audit rounds', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-budget-'));
  const config = loadConfig({
    KAFKA_BROKERS: '127.0.0.1:1',
    CHECKPOINT_DIR: dir,
    TEXT_HASH_DIM: '256',
    BATCH_SIZE: '4',
    STEP_EVERY_RECORDS: '4',
    WINDOW_STEPS: '5',
    SAMPLE_RATE: '0.2',
    CHECKPOINT_EVERY_RECORDS: '40',
    AUDIT_CANARIES: '8',
    AUDIT_EVERY_RECORDS: '1',
    SCREENS: 'none',
    DP_SEED: 'budget',
    ACCOUNTANT: 'rdp', // the property does not depend on the accountant; RDP keeps re-reading 60 ledgers cheap
  });
  const sidecar = new Sidecar({ config, logger: createLogger('silent') });
  await sidecar.init();
  const internals = sidecar as unknown as Internals;
  internals.buildPipeline({ send: async () => undefined });
  const control: BatchControl = { heartbeat: async () => undefined, resolve: () => undefined, shouldContinue: () => true };
  const store = new CheckpointStore(dir);
  let offset = 0;
  const batch = (n: number): ConsumedBatch => ({
    topic: config.topics.records,
    partition: 0,
    highWatermark: '1000000',
    messages: Array.from({ length: n }, (): RawMessage => {
      const i = offset++;
      return { topic: config.topics.records, partition: 0, offset: String(i), key: null, value: Buffer.from(JSON.stringify({ id: `r${i}`, source: `s${i % 9}`, label: i % 2, text: i % 2 ? 'free prize' : 'team lunch' })) };
    }),
  });
  let afterRound = 0;
  let liveAhead = 0;
  for (let k = 0; k < 60; k++) {
    await internals.handleBatch(batch(25), control); // a checkpoint every 40 messages falls inside batches
    const b = sidecar.budget();
    if (b.updatedAt === null) {
      expect((b.mechanism as { steps: number }).steps).toBe(0); // nothing durable yet: nothing released
      continue;
    }
    const c = await store.latest();
    expect(b.updatedAt).toBe(c!.header.createdAt); // the newest durable checkpoint, not an older or a live one
    const ledger = PrivacyBudget.fromJSON((c!.header.accountant as { budget: unknown }).budget);
    // ε flattens after the first window; the step count never stops growing, so it tells live from checkpointed.
    expect({ spent: b.epsilon!.spent, steps: (b.mechanism as { steps: number }).steps }).toEqual({ spent: ledger.publicSpent, steps: ledger.steps });
    if (sidecar.trainer.progress > ledger.steps) liveAhead += 1;
    if ((sidecar.audit() as { history: unknown[] }).history.length > 0) afterRound += 1;
  }
  expect((sidecar.audit() as { history: unknown[] }).history.length).toBeGreaterThanOrEqual(2);
  expect(afterRound).toBeGreaterThan(10);
  expect(liveAhead).toBeGreaterThan(10); // the live ledger really was ahead when the budget was read
  await sidecar.stop();
});
