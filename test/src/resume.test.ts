/** Reading a checkpoint back: the weight bytes must be exactly the blocks its header describes. */
import { loadConfig } from '../../src/config';
import { resumeState } from '../../src/checkpoint/resume';
import type { Checkpoint, CheckpointHeader } from '../../src/checkpoint/store';
import { hasCode } from '../../core/errors';

const config = loadConfig({ KAFKA_BROKERS: 'localhost:9092', DP_ENABLED: 'false' });
const model = { task: 'text', inputDim: 4, numClasses: 2 };
const specs = [
  { name: 'w', shape: [4, 2], dtype: 'float32' as const },
  { name: 'b', shape: [2], dtype: 'float32' as const },
];
const SIZE = (8 + 2) * 4;

function checkpoint(bytes: number, extra: Record<string, unknown> = {}): Checkpoint {
  const header = { seq: 3, createdAt: 'then', model, weightSpecs: specs, optimizer: { name: 'sgd', learningRate: 1 }, offsets: {}, dedup: {}, counts: { trained: 1 }, accountant: null, extra: { modelVersion: 3, ...extra } } as unknown as CheckpointHeader;
  const weights = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) weights[i] = Math.floor(i / SIZE) + 1; // block k holds the byte k + 1
  return { header, weights, file: 'ckpt-x' };
}

describe('resumeState', () => {
  it('splits trained weights, the average and the gate’s best model into one-model blocks', () => {
    const r = resumeState(checkpoint(3 * SIZE, { average: { updates: 7, offset: SIZE }, gate: { rejected: 0, accepted: 1, bestOffset: 2 * SIZE } }), config, model);
    expect([...new Set(r.weights.data)]).toEqual([1]);
    expect([...new Set(r.average!.weights.data)]).toEqual([2]);
    expect([...new Set(r.gate!.best!.data)]).toEqual([3]);
    expect(r.average!.state).toEqual({ updates: 7 });
    expect(r.modelVersion).toBe(3);
    expect(resumeState(checkpoint(SIZE), config, model).average).toBeUndefined();
  });

  it('refuses bytes that do not match the header instead of zero-filling weights', () => {
    const bad = [
      checkpoint(SIZE - 4),
      checkpoint(SIZE + 4),
      checkpoint(2 * SIZE, { average: { updates: 1, offset: SIZE - 4 } }),
      checkpoint(2 * SIZE, { gate: { bestOffset: 2 * SIZE } }),
      checkpoint(2 * SIZE),
    ];
    for (const c of bad) {
      const e = (() => {
        try {
          resumeState(c, config, model);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(hasCode(e, 'CHECKPOINT_CORRUPT')).toBe(true);
      expect(String((e as Error).message)).toMatch(/start fresh/);
    }
  });

  it('refuses a checkpoint of another model or another privacy mode, saying what to do', () => {
    expect(() => resumeState(checkpoint(SIZE), config, { ...model, inputDim: 8 })).toThrow(/use a new CHECKPOINT_DIR/);
    const dp = loadConfig({ KAFKA_BROKERS: 'localhost:9092' });
    expect(() => resumeState(checkpoint(SIZE), dp, model)).toThrow(/trained without DP/);
  });
});

describe("the screens' state section", () => {
  const weights = { specs, data: Buffer.alloc(SIZE, 1) };
  const contents = (screens: unknown) => ({
    seq: 4,
    createdAt: 'now',
    model,
    learningRate: 1,
    topic: 't.records',
    offsets: [],
    dedup: {},
    counts: { trained: 1 },
    accountant: null,
    modelVersion: 4,
    screens,
    weights,
  });

  it('is written after the weights, one JSON text per stage, and read back through real files; older checkpoints with the state in the header still load', async () => {
    const { mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { CheckpointStore } = await import('../../src/checkpoint/store');
    const { createDetectors } = await import('../../filters/config');
    const { encodeCheckpoint } = await import('../../src/checkpoint/encode');
    const chain = createDetectors({}, { now: () => 1_700_000_000_000 });
    const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
    for (let i = 0; i < 50; i++) for (const d of chain.detectors) d.screen({ id: `r${i}`, source: `s${i % 7}`, ts: 1_700_000_000_000 + i, label: i % 2, text: `hello number ${i} from the test` }, raw);
    const state = chain.toJSON();
    const { header, weights: bytes } = encodeCheckpoint(contents(state));
    expect(header.extra.screens).toBeUndefined(); // not in the header's one JSON string any more
    expect(header.extra.screensSection).toMatchObject({ offset: SIZE, parts: expect.arrayContaining([['trust', expect.any(Number)], ['campaign', expect.any(Number)]]) });
    const store = new CheckpointStore(mkdtempSync(path.join(os.tmpdir(), 'tg-section-')));
    await store.init();
    await store.write(header, bytes);
    const back = resumeState((await store.latest())!, config, model);
    expect(back.screens).toEqual(JSON.parse(JSON.stringify(state)));
    expect([...new Set(back.weights.data)]).toEqual([1]);
    const restored = createDetectors({}, { now: () => 1_700_000_000_000 });
    restored.restore(back.screens!);
    expect(restored.toJSON()).toEqual(chain.toJSON());

    // A checkpoint from before the section: the state inline in the header.
    const old = checkpoint(SIZE, { screens: JSON.parse(JSON.stringify(state)) });
    expect(resumeState(old, config, model).screens).toEqual(JSON.parse(JSON.stringify(state)));
  });

  it('refuses a section that does not match its table', async () => {
    const { encodeCheckpoint } = await import('../../src/checkpoint/encode');
    const { header, weights: bytes } = encodeCheckpoint(contents({ version: 1, trust: { sources: [], blocked: [] } }));
    const at = (w: Buffer, h = header) => ({ header: h, weights: w, file: 'ckpt-y' });
    expect(() => resumeState(at(bytes.subarray(0, bytes.length - 1)), config, model)).toThrow(/start fresh/);
    const garbled = Buffer.from(bytes);
    garbled[SIZE + 2] = 0x7b; // '{' inside the first part's JSON
    expect(() => resumeState(at(garbled), config, model)).toThrow(/unreadable state for screen stage/);
  });
});
