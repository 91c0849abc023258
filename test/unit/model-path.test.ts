/** Wrapping an existing learner: MODEL_PATH points at a tfjs LayersModel directory that the sidecar trains and republishes. */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf, tf } from '../../src/tf';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { Sidecar } from '../../src/sidecar';
import { ModelPublisher } from '../../src/checkpoint/publish';
import { hasCode } from '../../src/errors';

beforeAll(async () => {
  await initTf();
});

async function existingModel(inputDim: number, classes: number): Promise<string> {
  // A model someone else built (its own layer names and shapes), saved in the tfjs layers-model format.
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [inputDim], units: 12, activation: 'tanh' }));
  model.add(tf.layers.dense({ units: classes, activation: 'softmax' }));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-existing-'));
  await new ModelPublisher(dir).publish(model, { version: 1, createdAt: 'then', checkpointSeq: 0, featurizer: {}, numClasses: classes, backend: 'x', privacy: { epsilon: null, delta: null, accountant: null, unit: 'record' } });
  return path.join(dir, 'v1');
}

const sidecarFor = (env: Record<string, string>) =>
  new Sidecar({
    config: loadConfig({ KAFKA_BROKERS: 'x:1', PORT: '0', CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), 'tg-mp-')), ...env }),
    logger: createLogger('silent'),
  });

describe('MODEL_PATH', () => {
  it('loads an existing dense model, takes its input width, and predicts with its weights', async () => {
    const location = await existingModel(5, 3);
    const sidecar = sidecarFor({ MODEL: 'dense', MODEL_PATH: location, NUM_CLASSES: '3' });
    await sidecar.init();
    expect(sidecar.status().inputDim).toBe(5);
    const { probabilities } = sidecar.predict([{ features: [1, 0, 0, 0, 1] }]);
    expect(probabilities[0]).toHaveLength(3);
    expect(probabilities[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('reads text through the hashing featurizer at the model’s input width', async () => {
    const sidecar = sidecarFor({ MODEL: 'text', MODEL_PATH: await existingModel(512, 2) });
    await sidecar.init();
    expect(sidecar.status().inputDim).toBe(512);
  });

  it('refuses a model whose classes do not match NUM_CLASSES, and a path without a model', async () => {
    const mismatch = await sidecarFor({ MODEL: 'dense', MODEL_PATH: await existingModel(5, 3), NUM_CLASSES: '2' }).init().catch((e) => e);
    expect(hasCode(mismatch, 'MODEL_INVALID')).toBe(true);
    expect(String(mismatch.message)).toMatch(/outputs 3 classes but NUM_CLASSES=2/);
    const missing = await sidecarFor({ MODEL: 'dense', MODEL_PATH: '/nonexistent/model', FEATURE_DIM: '5' }).init().catch((e) => e);
    expect(hasCode(missing, 'MODEL_INVALID')).toBe(true);
    expect(String(missing.message)).toMatch(/MODEL_PATH must point to a directory with model.json/);
  });
});
