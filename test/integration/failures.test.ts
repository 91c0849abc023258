/**
 * Issue 14, failures 3, 5 and 6 against the local broker and a real `tayguard serve`:
 *   - a fresh broker with the same CHECKPOINT_DIR (offsets went backwards) stops with OFFSETS_RESET, and
 *     OFFSET_RESET_POLICY=rebase trains every new record (the old code counted them all as redeliveries);
 *   - a checkpoint directory that cannot be written turns /readyz 503 with CHECKPOINT_FAILED and counts
 *     tayguard_checkpoint_failures_total; once writable again, every record is accounted;
 *   - with the broker gone /readyz turns 503 within seconds, and SIGTERM still exits 0 (final checkpoint written).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { kafkaFor, produce, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { validRecord } from '../helpers/records';
import { spawnSidecar, startSidecar, total, waitFor } from '../helpers/sidecar-process';

jest.setTimeout(240_000);

const stream = (n: number, seed: string, prefix: string) => {
  const rng = seedrandom(seed);
  return Array.from({ length: n }, (_, i) => validRecord(i, rng, prefix));
};

const envFor = (broker: LocalBroker, dir: string, prefix: string) => ({
  KAFKA_BROKERS: broker.bootstrap,
  TOPIC_PREFIX: prefix,
  GROUP_ID: `${prefix}-group`,
  CHECKPOINT_DIR: path.join(dir, 'ckpt'),
  CHECKPOINT_EVERY_RECORDS: '200',
  CHECKPOINT_INTERVAL_MS: '300',
  TEXT_HASH_DIM: '1024',
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  READY_BROKER_TIMEOUT_MS: '3000',
});

describe('offsets that go backwards (a fresh broker, the same CHECKPOINT_DIR)', () => {
  it('stops with OFFSETS_RESET, then trains every new record with OFFSET_RESET_POLICY=rebase', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-reset-'));
    const prefix = 'reset';
    const old = await startLocalBroker();
    const first = await startSidecar(envFor(old, dir, prefix), path.join(dir, 'first.log'));
    await produce(kafkaFor(old), `${prefix}.records`, stream(800, 'old', 'old'));
    await waitFor(async () => total((await first.json('/v1/model')).detail.records) >= 800, 60_000, 'old stream handled');
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    await old.stop();

    const fresh = await startLocalBroker();
    try {
      await produce(kafkaFor(fresh), `${prefix}.records`, stream(100, 'new', 'new'));
      const refused = spawnSidecar(envFor(fresh, dir, prefix), path.join(dir, 'refused.log'));
      let stderr = '';
      refused.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const { code } = await refused.exited;
      expect(code).toBe(1);
      expect(stderr).toMatch(/OFFSETS_RESET: the broker's offsets for reset\.records went backwards/);
      expect(stderr).toMatch(/OFFSET_RESET_POLICY=rebase/);

      const rebased = await startSidecar({ ...envFor(fresh, dir, prefix), OFFSET_RESET_POLICY: 'rebase' }, path.join(dir, 'rebased.log'));
      try {
        await waitFor(async () => total((await rebased.json('/v1/model')).detail.records) >= 900, 60_000, 'new stream handled after the re-base');
        const { records } = (await rebased.json('/v1/model')).detail;
        expect(records).toMatchObject({ trained: 900, quarantined: 0, skipped: 0 });
        const text = await (await fetch(`${rebased.base}/metrics`)).text();
        expect(Number(/tayguard_offset_resets_total\{policy="rebase"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);
        expect(Number(/tayguard_redeliveries_total (\d+)/.exec(text)?.[1])).toBe(0);
      } finally {
        rebased.child.kill('SIGTERM');
        await rebased.exited;
      }
    } finally {
      await fresh.stop();
    }
  });
});

describe('failures are visible, shutdown from any state', () => {
  let broker: LocalBroker;
  beforeAll(async () => {
    broker = await startLocalBroker();
  });
  afterAll(() => broker?.stop());

  it('a checkpoint directory that cannot be written: /readyz 503 CHECKPOINT_FAILED, counted; nothing lost once it is back', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-ckptfail-'));
    const prefix = 'ckptfail';
    const env = envFor(broker, dir, prefix);
    const sidecar = await startSidecar(env, path.join(dir, 'sidecar.log'));
    try {
      await produce(kafkaFor(broker), `${prefix}.records`, stream(300, 'a', 'a'));
      await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= 300, 60_000, 'first records handled');
      // Root ignores permission bits: make the directory unwritable by putting a file where it was.
      const ckpt = env.CHECKPOINT_DIR;
      renameSync(ckpt, `${ckpt}.away`);
      writeFileSync(ckpt, 'not a directory');
      await produce(kafkaFor(broker), `${prefix}.records`, stream(300, 'b', 'b'));
      await waitFor(async () => (await fetch(`${sidecar.base}/readyz`)).status === 503, 30_000, '/readyz 503');
      const ready = (await (await fetch(`${sidecar.base}/readyz`)).json()) as { reasons: { code: string }[] };
      expect(ready.reasons.map((r) => r.code)).toContain('CHECKPOINT_FAILED');
      const model = (await sidecar.json('/v1/model')).detail;
      expect(model.checkpointFailures).toBeGreaterThan(0);
      expect(model.lastCheckpointError.message).toEqual(expect.any(String));
      const text = await (await fetch(`${sidecar.base}/metrics`)).text();
      expect(Number(/tayguard_checkpoint_failures_total (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);

      rmSync(ckpt);
      renameSync(`${ckpt}.away`, ckpt);
      await waitFor(async () => (await fetch(`${sidecar.base}/readyz`)).status === 200, 60_000, '/readyz 200 again');
      await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= 600, 60_000, 'all records handled');
      expect((await sidecar.json('/v1/model')).detail.records).toMatchObject({ trained: 600, quarantined: 0, skipped: 0 });
    } finally {
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
    }
  });

  it('the broker dies: /readyz 503 within seconds; SIGTERM after that exits 0 with the final checkpoint', async () => {
    const own = await startLocalBroker();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-brokerdown-'));
    const prefix = 'brokerdown';
    const sidecar = await startSidecar(envFor(own, dir, prefix), path.join(dir, 'sidecar.log'));
    await produce(kafkaFor(own), `${prefix}.records`, stream(300, 'c', 'c'));
    await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= 300, 60_000, 'records handled');
    await waitFor(async () => (await sidecar.json('/v1/model')).checkpointSeq > 0, 30_000, 'a checkpoint');
    const killedAt = Date.now();
    await own.stop();
    await waitFor(async () => (await fetch(`${sidecar.base}/readyz`)).status === 503, 30_000, '/readyz 503 after the broker died');
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    const ready = (await (await fetch(`${sidecar.base}/readyz`)).json()) as { reasons: { code: string }[] };
    expect(ready.reasons.length).toBeGreaterThan(0);
    // Let kafkajs give up on the consumer (a crash), then stop: must not throw from pauseAll, and exits 0.
    await new Promise((r) => setTimeout(r, 5000));
    const t0 = Date.now();
    sidecar.child.kill('SIGTERM');
    const { code } = await sidecar.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});
