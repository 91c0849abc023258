import { initTf, tf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { crossEntropySum, logitsFunction } from '../../privacy/clipping/microbatch';
import { recordGradient } from '../../train/record-gradient';

beforeAll(async () => {
  await initTf();
});

/** tfjs autodiff of one record's softmax cross-entropy: the output layer's kernel [in, K] and bias [K]. */
function autodiff(learner: TfjsLearner, record: { text?: string; features?: number[]; label: number }) {
  const { x, y } = learner.batch([record], [record.label]);
  const vars = learner.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => crossEntropySum(logitsFunction(learner.model)(x), y), vars);
  const names = Object.keys(grads);
  const kernel = grads[names[names.length - 2]].arraySync() as number[][];
  const bias = grads[names[names.length - 1]].arraySync() as number[];
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return { kernel, bias };
}

describe('recordGradient: the last Dense layer\'s per-record gradient, factored', () => {
  it.each([
    ['softmax regression on hashed text', 'text', 0],
    ['one hidden ReLU layer on dense features', 'dense', 8],
  ] as const)('equals tfjs autodiff for %s', (_name, kind, hidden) => {
    const dim = kind === 'text' ? 64 : 12;
    const learner = new TfjsLearner(buildModel({ inputDim: dim, numClasses: 3, hiddenUnits: hidden, seed: 3 }), featurizerFor(kind, dim), { learningRate: 0.5 });
    const records = [0, 1, 2].map((label) =>
      kind === 'text' ? { id: `r${label}`, source: 's', label, text: `alpha beta gamma ${label} delta ${'x'.repeat(label + 1)}` } : { id: `r${label}`, source: 's', label, features: Array.from({ length: dim }, (_, j) => Math.sin(j + label)) },
    );
    // Move the weights off their initial values first, so the residuals differ per class.
    const { x, y } = learner.batch(records, [0, 1, 2]);
    learner.sgdStep(x, y);
    tf.dispose([x, y]);
    const grad = recordGradient(learner);
    for (const r of records) {
      const g = grad(r);
      expect(g).toBeDefined();
      const { kernel, bias } = autodiff(learner, r);
      const input = new Float64Array(g!.inputs);
      for (let i = 0; i < g!.n; i++) input[g!.indices[i]] = g!.values[i];
      for (let k = 0; k < 3; k++) {
        expect(g!.residual[k]).toBeCloseTo(bias[k], 5);
        for (let i = 0; i < g!.inputs; i++) expect(input[i] * g!.residual[k]).toBeCloseTo(kernel[i][k], 5);
      }
    }
    expect(grad({ id: 'bad', source: 's', label: 7, text: 'alpha' })).toBeUndefined();
  });
});
