import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf, tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { loadLayersModelFromDir } from '../../middleware/files';
import { ModelPublisher } from '../../src/checkpoint/publish';
import { TfjsLearner } from '../../middleware/learner';
import { hashedTextFeaturizer, encodeBatch, tokenize } from '../../middleware/featurize';
import { hasCode } from '../../core/errors';

const texts = ['win money now', 'meeting at noon', 'cheap pills win', 'lunch tomorrow?', 'free money win win', 'agenda for the meeting'];
const labels = [1, 0, 1, 0, 1, 0];

beforeAll(async () => {
  await initTf();
});

describe('hashed text featurizer', () => {
  it('tokenises case-insensitively and gives every non-empty row unit L2 norm', () => {
    expect(tokenize("Don't SHOUT, ok?")).toEqual(["don't", 'shout', 'ok']);
    const f = hashedTextFeaturizer(64);
    const rows = encodeBatch(f, [{ text: 'buy buy buy now' }, { text: '' }]);
    const norm = Math.hypot(...rows.subarray(0, 64));
    expect(norm).toBeCloseTo(1, 6);
    expect(rows.subarray(64).every((v) => v === 0)).toBe(true);
  });
});

describe('tfjs learner', () => {
  const make = (hidden = 8) => new TfjsLearner(buildModel({ inputDim: 256, numClasses: 2, hiddenUnits: hidden, seed: 7 }), featurizerFor('text', 256), { learningRate: 1 });

  it('learns a separable toy task and reports a falling loss', () => {
    const learner = make();
    const before = learner.loss(texts.map((text) => ({ text })), labels);
    for (let i = 0; i < 30; i++) {
      const { x, y } = learner.batch(texts.map((text) => ({ text })), labels);
      learner.sgdStep(x, y);
      x.dispose();
      y.dispose();
    }
    expect(learner.loss(texts.map((text) => ({ text })), labels)).toBeLessThan(before / 3);
    const p = learner.predict([{ text: 'win free money' }, { text: 'meeting agenda' }]);
    expect(p[0][1]).toBeGreaterThan(0.5);
    expect(p[1][0]).toBeGreaterThan(0.5);
  });

  it('keeps learning when confidently wrong: the plain loss has a gradient at saturated predictions (lr 50)', () => {
    const learner = new TfjsLearner(buildModel({ inputDim: 256, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 256), { learningRate: 50 });
    // Drive the model to predict class 0 for everything with p(1) far below 1e-7 (the old clamp's floor).
    const { x: x0, y: y0 } = learner.batch(texts.map((text) => ({ text })), texts.map(() => 0));
    for (let i = 0; i < 10; i++) learner.sgdStep(x0, y0);
    const saturated = learner.predict([{ text: texts[0] }])[0][1];
    expect(saturated).toBeLessThan(1e-7);
    // Now the true labels: the clamped loss gave zero gradient here and the model froze at "always 0".
    const { x, y } = learner.batch(texts.map((text) => ({ text })), labels);
    for (let i = 0; i < 20; i++) learner.sgdStep(x, y);
    const probs = learner.predict(texts.map((text) => ({ text })));
    expect(probs.map((p) => (p[1] > p[0] ? 1 : 0))).toEqual(labels);
    tf.dispose([x0, y0, x, y]);
  });

  it('does not leak tensors across training steps and predictions', () => {
    const learner = make();
    const step = () => {
      const { x, y } = learner.batch(texts.map((text) => ({ text })), labels);
      learner.sgdStep(x, y);
      x.dispose();
      y.dispose();
      learner.predict([{ text: 'x' }]);
      learner.loss([{ text: 'y' }], [0]);
    };
    step();
    const n = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(n);
  });

  it('restores a snapshot exactly into a freshly built model', () => {
    const a = make();
    const { x, y } = a.batch(texts.map((text) => ({ text })), labels);
    a.sgdStep(x, y);
    x.dispose();
    y.dispose();
    const b = make();
    b.restore(a.snapshot());
    expect(b.predict([{ text: 'win' }])).toEqual(a.predict([{ text: 'win' }]));
  });

  it('rejects a snapshot from a different architecture with a clear error', () => {
    const err = (() => {
      try {
        make(8).restore(make(0).snapshot());
      } catch (e) {
        return e;
      }
    })();
    expect(hasCode(err, 'CHECKPOINT_CORRUPT')).toBe(true);
  });

  it('publishes a version directory that tfjs loads back with identical predictions', async () => {
    const learner = make();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pub-'));
    const publisher = new ModelPublisher(dir, 2);
    await publisher.init();
    for (const v of [1, 2, 3]) {
      await publisher.publish(learner.model, { version: v, createdAt: 'now', checkpointSeq: v, featurizer: learner.featurizer.describe(), numClasses: 2, backend: tf.getBackend(), privacy: { epsilon: 1.5, delta: 1e-6, accountant: 'prv', unit: 'record' } });
    }
    const fs = await import('node:fs/promises');
    // Integer version directories (the newest 2 kept), aliases, and the earlier layout's LATEST + v<N> links.
    expect((await fs.readdir(dir)).sort()).toEqual(['2', '3', 'LATEST', 'stable', 'v2', 'v3']);
    expect((await fs.readFile(path.join(dir, 'LATEST'), 'utf8')).trim()).toBe('v3');
    expect(await fs.readlink(path.join(dir, 'stable'))).toBe('3');
    expect(await fs.readlink(path.join(dir, 'v3'))).toBe('3');
    const loaded = await loadLayersModelFromDir(path.join(dir, 'stable'));
    const copy = new TfjsLearner(loaded, featurizerFor('text', 256), { learningRate: 1 });
    expect(copy.predict([{ text: 'cheap win' }])[0][0]).toBeCloseTo(learner.predict([{ text: 'cheap win' }])[0][0], 6);
    const version = JSON.parse(await fs.readFile(path.join(dir, '3', 'version.json'), 'utf8'));
    const sha = createHash('sha256').update(await fs.readFile(path.join(dir, '3', 'weights.bin'))).digest('hex');
    expect(version).toMatchObject({ version: 3, name: '3', weightsSha256: sha, featurizer: { kind: 'text', dim: 256, hash: 'fnv1a32' }, privacy: { epsilon: 1.5, delta: 1e-6 } });
    // A version is public: it carries ε, never a count of the records behind it.
    expect(JSON.stringify(version)).not.toMatch(/records/i);
    // A published version is never rewritten.
    await expect(publisher.publish(learner.model, { version: 3, createdAt: 'later', checkpointSeq: 3, featurizer: {}, numClasses: 2, backend: 'x', privacy: { epsilon: 2, delta: 1e-6, accountant: 'prv', unit: 'record' } })).rejects.toMatchObject({ code: 'MODEL_VERSION_EXISTS' });
    // A version after a rollback is the rollback alias; stable stays on the last one without.
    await publisher.publish(learner.model, { version: 4, createdAt: 'now', checkpointSeq: 4, featurizer: {}, numClasses: 2, backend: 'x', privacy: { epsilon: 2, delta: 1e-6, accountant: 'prv', unit: 'record' }, gate: { rolledBack: true } });
    expect(await fs.readlink(path.join(dir, 'rollback'))).toBe('4');
    expect(await fs.readlink(path.join(dir, 'stable'))).toBe('3');
    await publisher.publish(learner.model, { version: 5, createdAt: 'now', checkpointSeq: 5, featurizer: {}, numClasses: 2, backend: 'x', privacy: { epsilon: 2, delta: 1e-6, accountant: 'prv', unit: 'record' } });
    // Kept: the newest 2 (5, 4); 3 goes (stable moved on to 5), and an alias target would stay however old.
    expect((await fs.readdir(dir)).filter((n) => /^\d+$/.test(n)).sort()).toEqual(['4', '5']);
  });

  it('refuses a model whose input width does not match the featurizer', () => {
    expect(() => new TfjsLearner(buildModel({ inputDim: 10, numClasses: 2, hiddenUnits: 0 }), featurizerFor('text', 256), { learningRate: 1 })).toThrow(/TEXT_HASH_DIM=10/);
  });
});
