/**
 * Crash the sidecar mid-stream — by SIGKILL at a random moment, and at the worst moments (a checkpoint is on
 * disk but its offsets are not committed; a checkpoint was about to be written) — then restart it on the same
 * checkpoint directory. Totals must stay exact and no record may be trained twice: with unique ids and no
 * duplicates produced, trained must equal the number of valid records exactly (a record trained twice would
 * push it above; a lost one below), and nothing may be skipped.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { kafkaFor, offsets, produce, readAll, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { mixedStream } from '../helpers/records';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(240_000);

let broker: LocalBroker;
let kafka: Kafka;
beforeAll(async () => {
  broker = await startLocalBroker();
  kafka = kafkaFor(broker);
});
afterAll(() => broker?.stop());

async function scenario(
  name: string,
  killWith: (s: SidecarProcess) => Promise<void>,
  faultEnv: Record<string, string> = {},
  afterRestart: (s: SidecarProcess) => Promise<void> = async () => undefined,
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tg-crash-${name}-`));
  const prefix = `crash-${name}`;
  const group = `${prefix}-group`;
  const N = 6000;
  const { messages, malformed } = mixedStream(N, 20, `crash-${name}`);
  const env = {
    KAFKA_BROKERS: broker.bootstrap,
    TOPIC_PREFIX: prefix,
    GROUP_ID: group,
    CHECKPOINT_DIR: path.join(dir, 'ckpt'),
    CHECKPOINT_EVERY_RECORDS: '500',
    CHECKPOINT_INTERVAL_MS: '300',
    MAX_TEXT_CHARS: '2000',
    // The killed member holds its partitions until its session times out; keep that short in tests.
    KAFKA_SESSION_TIMEOUT_MS: '6000',
  };
  await produce(kafka, `${prefix}.records`, messages);
  const first = await startSidecar({ ...env, ...faultEnv }, path.join(dir, 'first.log'));
  await killWith(first);
  const died = await first.exited;
  expect(died.signal).toBe('SIGKILL');

  const second = await startSidecar(env, path.join(dir, 'second.log'));
  try {
    await afterRestart(second);
    await waitFor(async () => total((await second.json('/v1/model')).detail.records) >= N, 120_000, 'all records handled after restart');
    const { records } = (await second.json('/v1/model')).detail;
    expect(total(records)).toBe(N);
    expect(records.trained).toBe(N - malformed);
    expect(records.quarantined).toBe(malformed);
    expect(records.skipped).toBe(0);
    await waitFor(async () => (await offsets(kafka, group, `${prefix}.records`)).every((p) => p.committed === p.end), 30_000, 'offsets committed');
    // At-least-once on the quarantine topic: a crash can repeat a quarantine message, never lose one.
    const quarantined = await readAll(kafka, `${prefix}.quarantine`);
    expect(new Set(quarantined.map((q) => q.key)).size).toBe(malformed);
    return { second, dir, env, records };
  } catch (e) {
    second.child.kill('SIGKILL');
    throw e;
  }
}

describe('crash and restart', () => {
  it('SIGKILL at a random point mid-stream: totals exact, nothing trained twice, ε never goes down', async () => {
    let epsilonSeen = 0;
    let stepsSeen = 0;
    const { second, env, dir } = await scenario(
      'random',
      async (s) => {
        await waitFor(
          async () => {
            const budget = await s.json('/v1/privacy/budget');
            epsilonSeen = Math.max(epsilonSeen, budget.epsilon.spent);
            stepsSeen = Math.max(stepsSeen, budget.mechanism.steps);
            return total((await s.json('/v1/model')).detail.records) >= 2500;
          },
          60_000,
          'mid-stream',
        );
        s.child.kill('SIGKILL');
      },
      {},
      async (restarted) => {
        // The first answer after the restart comes from the restored checkpoint alone.
        const after = await restarted.json('/v1/privacy/budget');
        expect(epsilonSeen).toBeGreaterThan(0);
        expect(after.epsilon.spent).toBeGreaterThanOrEqual(epsilonSeen);
        expect(after.mechanism.steps).toBeGreaterThanOrEqual(stepsSeen);
      },
    );
    // And a restart under a new consumer group (committed offsets gone): the checkpoint's offsets and watermark
    // still prevent any retraining.
    second.child.kill('SIGTERM');
    await second.exited;
    const third = await startSidecar({ ...env, GROUP_ID: `${env.GROUP_ID}-new` }, path.join(dir, 'third.log'));
    await new Promise((r) => setTimeout(r, 3000));
    const { records } = (await third.json('/v1/model')).detail;
    expect(total(records)).toBe(6000);
    expect(records.skipped).toBe(0);
    third.child.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
  });

  it('SIGKILL after a checkpoint is durable but before its offsets are committed', async () => {
    // Kafka still holds older committed offsets; the restart seeks to the checkpoint's, and the watermark would
    // catch anything redelivered below them, so the exact totals inside scenario() hold.
    const { second } = await scenario('after-write', (s) => s.exited.then(() => undefined), { TAYGUARD_FAULT: 'after-checkpoint-write:3' });
    second.child.kill('SIGTERM');
    await second.exited;
  });

  it('SIGKILL just before a checkpoint is written', async () => {
    const { second } = await scenario('before-write', (s) => s.exited.then(() => undefined), { TAYGUARD_FAULT: 'before-checkpoint-write:4' });
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
