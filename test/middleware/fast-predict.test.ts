import { initTf, tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { fastPredictor } from '../../middleware/fast-predict';

beforeAll(async () => {
  await initTf();
});

const texts = ['win free money now', 'meeting agenda for tomorrow', '', 'Ünïcödé tëxt and numbers 123 456'];

describe('fast single-record predictor', () => {
  it.each([0, 16])('matches tfjs on a Dense chain (hidden units %i), and follows weight changes', (hidden) => {
    const learner = new TfjsLearner(buildModel({ inputDim: 1024, numClasses: 3, hiddenUnits: hidden, seed: 4 }), featurizerFor('text', 1024), { learningRate: 1 });
    const fast = fastPredictor(learner);
    const check = () => {
      for (const text of texts) {
        const slow = learner.predict([{ text }])[0];
        fast({ text }).forEach((p, i) => expect(p).toBeCloseTo(slow[i], 5));
      }
    };
    check();
    const other = new TfjsLearner(buildModel({ inputDim: 1024, numClasses: 3, hiddenUnits: hidden, seed: 99 }), featurizerFor('text', 1024), { learningRate: 1 });
    learner.restore(other.snapshot());
    check();
  });

  it('falls back to tfjs for layers it does not know', () => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ inputShape: [8], units: 4, activation: 'relu' }));
    model.add(tf.layers.dropout({ rate: 0.1 }));
    model.add(tf.layers.dense({ units: 2, activation: 'softmax' }));
    const learner = new TfjsLearner(model, featurizerFor('dense', 8), { learningRate: 1 });
    const payload = { features: [1, 2, 3, 4, 5, 6, 7, 8] };
    expect(fastPredictor(learner)(payload)).toEqual(learner.predict([payload])[0]);
  });
});
