/** The served moving average of the weights (AVERAGE_DECAY): its arithmetic, and its place in the step chain. */
import { initTf, tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { WeightAverage } from '../../train/average';
import { createStepRunner, type StepStage } from '../../train/step';
import { createMetrics } from '../../src/metrics';
import type { TrainingRecord } from '../../core/record';

beforeAll(async () => {
  await initTf();
});

const texts = ['win money now', 'meeting at noon', 'cheap pills win', 'lunch tomorrow?', 'free money win win', 'agenda for the meeting'];
const records: TrainingRecord[] = texts.map((text, i) => ({ id: `r${i}`, source: 's', label: i % 2 === 0 ? 1 : 0, text }));
const make = () => new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 3 }), featurizerFor('text', 64), { learningRate: 2 });
const floats = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

describe('weight average', () => {
  it('is the ramped exponential moving average of the applied iterates', async () => {
    const learner = make();
    const average = new WeightAverage(learner, 0.8);
    const step = createStepRunner(learner, createMetrics(), [average.stage()]);
    // Reference, from the learner's own snapshots: a_0 = w_0, a_{t+1} = d_t a_t + (1 − d_t) w_{t+1}, d_t = min(0.8, (1+t)/(10+t)).
    let expected = Float64Array.from(floats(learner.snapshot().data));
    for (let t = 0; t < 12; t++) {
      await step(records);
      const w = floats(learner.snapshot().data);
      const d = Math.min(0.8, (1 + t) / (10 + t));
      expected = expected.map((a, i) => d * a + (1 - d) * w[i]);
    }
    const got = floats(average.snapshot().data);
    expect(average.updates).toBe(12);
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    // The average lags the iterate: it is a different model, not a copy.
    const last = floats(learner.snapshot().data);
    expect(Math.max(...got.map((v, i) => Math.abs(v - last[i])))).toBeGreaterThan(1e-3);
    average.dispose();
  });

  it('leaves out a step that a later stage undid (the update gate), and restarts at the weights on reset', async () => {
    const learner = make();
    const average = new WeightAverage(learner, 0.9);
    let undo = false;
    const gateLike: StepStage = {
      name: 'undo',
      handle: async (ctx, next) => {
        const before = learner.snapshot();
        await next();
        if (undo) {
          learner.restore(before);
          ctx.applied = false;
        }
      },
    };
    const step = createStepRunner(learner, createMetrics(), [average.stage(), gateLike]);
    await step(records);
    const kept = average.snapshot().data;
    undo = true;
    await step(records);
    expect(average.updates).toBe(1);
    expect(average.snapshot().data.equals(kept)).toBe(true);
    average.reset();
    expect(average.updates).toBe(0);
    expect(average.snapshot().data.equals(learner.snapshot().data)).toBe(true);
    // Trained weights (after a rollback, or an older checkpoint) skip the ramp: one step moves the average by 1 − d.
    average.startWarm();
    expect(average.nextDecay()).toBeCloseTo(0.9, 12);
    const before = floats(average.snapshot().data);
    undo = false;
    await step(records);
    const w = floats(learner.snapshot().data);
    floats(average.snapshot().data).forEach((v, i) => expect(v).toBeCloseTo(0.9 * before[i] + 0.1 * w[i], 5));
    average.dispose();
  });

  it('round-trips through its checkpoint bytes and refuses bytes that are too short', async () => {
    const learner = make();
    const average = new WeightAverage(learner, 0.9);
    const step = createStepRunner(learner, createMetrics(), [average.stage()]);
    for (let i = 0; i < 3; i++) await step(records);
    const saved = average.snapshot();
    const copy = new WeightAverage(learner, 0.9);
    copy.restore(saved.data, average.toJSON());
    expect(copy.snapshot().data.equals(saved.data)).toBe(true);
    expect(copy.nextDecay()).toBeCloseTo(average.nextDecay(), 12);
    expect(() => copy.restore(saved.data.subarray(0, 8), { updates: 1 })).toThrow(/do not fit this model/);
    expect(() => new WeightAverage(learner, 1)).toThrow(RangeError);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await step(records);
    expect(tf.memory().numTensors).toBe(n);
    [average, copy].forEach((a) => a.dispose());
  });
});
