import { promises as fs, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointStore, type CheckpointHeader } from '../../src/checkpoint/store';
import { hasCode } from '../../src/errors';

const header = (seq: number): CheckpointHeader => ({
  seq,
  createdAt: new Date(0).toISOString(),
  model: { task: 'text', inputDim: 4, numClasses: 2 },
  weightSpecs: [{ name: 'w', shape: [2], dtype: 'float32' }],
  optimizer: { name: 'sgd', learningRate: 1 },
  offsets: { 't.records': { '0': String(seq * 10) } },
  dedup: { watermarks: {}, ids: [] },
  counts: { trained: seq },
  accountant: null,
  extra: {},
});

describe('checkpoint store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tg-ckpt-'));
  });

  it('returns nothing before the first checkpoint, then the newest one byte for byte', async () => {
    const store = new CheckpointStore(dir, 2);
    await store.init();
    expect(await store.latest()).toBeUndefined();
    await store.write(header(1), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    await store.write(header(2), Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]));
    const latest = await store.latest();
    expect(latest?.header.seq).toBe(2);
    expect(latest?.header.offsets).toEqual({ 't.records': { '0': '20' } });
    expect([...(latest?.weights ?? [])]).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
  });

  it('keeps only the configured number of checkpoints', async () => {
    const store = new CheckpointStore(dir, 2);
    await store.init();
    for (let i = 1; i <= 5; i++) await store.write(header(i), Buffer.alloc(8));
    expect((await fs.readdir(dir)).sort()).toEqual(['ckpt-000000000004.tgck', 'ckpt-000000000005.tgck']);
  });

  it('ignores and removes temp files a crash left mid-write', async () => {
    const store = new CheckpointStore(dir);
    await store.init();
    await store.write(header(1), Buffer.alloc(8));
    await fs.writeFile(path.join(dir, 'ckpt-000000000002.tgck.tmp-123'), 'half a checkpoint');
    const reopened = new CheckpointStore(dir);
    await reopened.init();
    expect((await reopened.latest())?.header.seq).toBe(1);
    expect(await fs.readdir(dir)).toEqual(['ckpt-000000000001.tgck']);
  });

  it('refuses to start from a damaged newest checkpoint instead of silently using an older one', async () => {
    const store = new CheckpointStore(dir);
    await store.init();
    await store.write(header(1), Buffer.alloc(8));
    const file = await store.write(header(2), Buffer.alloc(8));
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 40] ^= 0xff; // flip a bit inside the weights
    await fs.writeFile(file, bytes);
    const err = await store.latest().catch((e) => e);
    expect(hasCode(err, 'CHECKPOINT_CORRUPT')).toBe(true);
    expect(String(err.message)).toMatch(/npx tayguard checkpoint repair/);
  });

  it('fails with CHECKPOINT_FAILED and a reason when the directory is not writable', async () => {
    const file = path.join(dir, 'not-a-dir');
    await fs.writeFile(file, 'x');
    const err = await new CheckpointStore(path.join(file, 'sub')).init().catch((e) => e);
    expect(hasCode(err, 'CHECKPOINT_FAILED')).toBe(true);
  });
});
