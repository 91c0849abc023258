/**
 * A damaged newest checkpoint after a newer model was published: start-up stops and says what to run; the
 * repair resumes from the newest intact checkpoint without ever reporting less ε than a published version, and
 * the next version number has never named another model. Real sidecar checkpoints and publishes (no broker:
 * the record path is fed directly), a real damaged file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { hasCode } from '../../core/errors';
import { inspectCheckpoints, repairCheckpoints } from '../../src/checkpoint/repair';
import { prvEpsilon } from '../../privacy/accountants';
import type { RawMessage } from '../../core/record';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

function sidecarFor(dir: string, extra: Record<string, string> = {}): Promise<Sidecar> {
  const config = loadConfig({
    KAFKA_BROKERS: '127.0.0.1:1',
    CHECKPOINT_DIR: dir,
    TEXT_HASH_DIM: '256',
    STEP_EVERY_RECORDS: '8',
    WINDOW_STEPS: '5',
    SAMPLE_RATE: '0.2',
    EPSILON_LIMIT: '50',
    DP_SEED: 'repair-test',
    PORT: '0',
    ...extra,
  });
  return createSidecar(config, createLogger('silent'));
}

let offset = 0;
const message = (i: number): RawMessage => ({
  topic: 'tayguard.records',
  partition: 0,
  offset: String(offset++),
  key: null,
  value: Buffer.from(JSON.stringify({ id: `r${i}`, source: `s${i % 7}`, label: i % 2, text: i % 2 ? 'win a free prize now' : 'lunch at noon with the team' })),
});

/** Open the record path without Kafka: the sidecar's own pipeline with an in-memory quarantine sink. */
async function feed(s: Sidecar, from: number, n: number): Promise<void> {
  if (!s.pipeline) (s as unknown as { buildPipeline(sink: { send(): Promise<void> }): void }).buildPipeline({ send: async () => undefined });
  for (let i = from; i < from + n; i++) await s.pipeline!.handle(message(i));
  await s.checkpoint();
}

const version = async (modelDir: string, v: number) => JSON.parse(await fs.readFile(path.join(modelDir, String(v), 'version.json'), 'utf8'));

describe('checkpoint verify and repair', () => {
  it('never lets the reported ε fall below a published version, and never reuses a version number', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-repair-'));
    const modelDir = path.join(dir, 'models');
    const first = await sidecarFor(dir);
    await feed(first, 0, 16); // 2 steps → checkpoint 1, version 1
    await feed(first, 16, 48); // 6 more steps → checkpoint 2, version 2 (a full window: ε grew)
    await first.stop();
    const v2 = await version(modelDir, 2);
    const v1 = await version(modelDir, 1);
    expect(v2.privacy.epsilon).toBeGreaterThan(v1.privacy.epsilon);

    // The newest checkpoint is damaged on disk.
    const newest = path.join(dir, 'ckpt-000000000002.tgck');
    const bytes = await fs.readFile(newest);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await fs.writeFile(newest, bytes);

    const stopped = await sidecarFor(dir).catch((e: unknown) => e);
    expect(hasCode(stopped, 'CHECKPOINT_CORRUPT')).toBe(true);
    expect((stopped as Error).message).toMatch(/npx tayguard checkpoint verify.*npx tayguard checkpoint repair/);

    const before = await inspectCheckpoints(dir, modelDir);
    expect(before.healthy).toBe(false);
    expect(before.newestIntact?.seq).toBe(1);
    // Moving the damaged file aside by hand would report checkpoint 1's ε — below what version 2 published.
    expect(before.newestIntact!.epsilon!).toBeLessThan(v2.privacy.epsilon);
    const cli = await run(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'checkpoint', 'verify', '--dir', dir], { cwd: ROOT }).catch((e: { code: number; stdout: string }) => e);
    expect((cli as { code?: number }).code).toBe(1);
    expect((cli as { stdout: string }).stdout).toMatch(/DAMAGED .*ckpt-000000000002/);

    const result = await repairCheckpoints(dir, modelDir);
    expect(result.repaired).toBe(true);
    expect(result.setAside).toEqual([path.join(dir, 'damaged', 'ckpt-000000000002.tgck')]);
    expect(result.written!.seq).toBe(3);
    expect(result.written!.epsilonAfter!).toBeGreaterThanOrEqual(v2.privacy.epsilon);
    expect((await inspectCheckpoints(dir, modelDir)).healthy).toBe(true);
    expect((await repairCheckpoints(dir, modelDir)).repaired).toBe(false); // idempotent

    const resumed = await sidecarFor(dir);
    expect(resumed.budget().epsilon!.spent).toBeGreaterThanOrEqual(v2.privacy.epsilon);
    await feed(resumed, 16, 16); // the replayed records train again → a new version
    await resumed.stop();
    expect((await version(modelDir, 2)).createdAt).toBe(v2.createdAt); // never rewritten
    const next = await version(modelDir, 4);
    expect(next.privacy.epsilon).toBeGreaterThanOrEqual(v2.privacy.epsilon);
  });

  it('charges the costliest plan a lost run used, and refuses a costlier one after the repair (review B5)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-repair-plan-'));
    const modelDir = path.join(dir, 'models');
    const first = await sidecarFor(dir);
    await feed(first, 0, 16); // checkpoint 1 at q = 0.2
    await first.stop();
    const costly = await sidecarFor(dir, { SAMPLE_RATE: '0.5' }); // a restart with a costlier plan
    await feed(costly, 16, 48); // checkpoint 2, version 2 declares q = 0.5
    await costly.stop();
    expect((await version(modelDir, 2)).privacy).toMatchObject({ sampleRate: 0.5, noiseMultiplier: 2.24 });
    const newest = path.join(dir, 'ckpt-000000000002.tgck');
    const bytes = await fs.readFile(newest);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await fs.writeFile(newest, bytes);
    const result = await repairCheckpoints(dir, modelDir);
    // Replayed records: up to W steps of the lost run at q 0.5, and up to W more.
    const twoWindows = prvEpsilon([{ sampleRate: 0.5, noiseMultiplier: 2.24, steps: 10 }], 1e-6).epsilon;
    expect(result.written!.epsilonAfter!).toBeGreaterThanOrEqual(twoWindows - 1e-9);
    await expect(sidecarFor(dir, { SAMPLE_RATE: '0.6' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/repaired/) });
    const same = await sidecarFor(dir, { SAMPLE_RATE: '0.5' });
    expect(same.budget().epsilon!.spent).toBeGreaterThanOrEqual(twoWindows - 1e-9);
    await same.stop();
  });
});
