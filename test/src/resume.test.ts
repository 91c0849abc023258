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
