/**
 * Proof the alarm can fire: a throwaway DP-SGD configuration with the noise switched off (σ = 0) while
 * claiming ε = 1. Canaries are out-of-distribution — each lights up one feature no other record uses — so a
 * model trained without noise memorises exactly the included ones, and the one-run audit's 95% lower bound
 * lands above the claimed ε. The same configuration with the noise the claim requires stays below it.
 */
import seedrandom from 'seedrandom';
import { getNoiseMultiplier, rdpEpsilon } from '../../../privacy/accountants';
import { drawCanaryMembership, lossAttackScoresForModel, oneRunAudit } from '../../../privacy/audit';
import { clippedGradientSum } from '../../../privacy/clipping';
import { addNoise, createGaussianSource } from '../../../privacy/noise';
import { buildModel } from '../../../middleware/build';
import { initTf, tf } from '../../../core/tf';

const BASE = 200; // ordinary records
const BASE_DIM = 10;
const M = 100; // canaries
const DIM = BASE_DIM + M;
const Q = 0.2;
const STEPS = 150;
const CLIP = 1;
const LR = 5;
const DELTA = 1e-5;
const CLAIMED_EPSILON = 1;

beforeAll(async () => {
  await initTf();
});

function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** Canary labels alternate so that, together, they do not shift the bias (which would move every canary's score). */
const canaryLabel = (i: number): number => i % 2;

/** Base records: two Gaussian classes in the first BASE_DIM features. Canary i: feature BASE_DIM + i = 1. */
function dataset(included: Uint8Array, rng: () => number) {
  const rows: { x: Float32Array; y: number }[] = [];
  for (let i = 0; i < BASE; i++) {
    const y = i % 2;
    const x = new Float32Array(DIM);
    for (let j = 0; j < BASE_DIM; j++) x[j] = (y ? 0.5 : -0.5) + 0.5 * gaussian(rng);
    rows.push({ x, y });
  }
  const canaryX = new Float32Array(M * DIM);
  for (let i = 0; i < M; i++) {
    canaryX[i * DIM + BASE_DIM + i] = 1;
    if (included[i]) rows.push({ x: canaryX.subarray(i * DIM, (i + 1) * DIM), y: canaryLabel(i) });
  }
  const x = new Float32Array(rows.length * DIM);
  rows.forEach((r, i) => x.set(r.x, i * DIM));
  return { x, y: rows.map((r) => r.y), n: rows.length, canaryX };
}

/** DP-SGD as the sidecar does it: Poisson sampling, clipped sum, N(0, σ²C²) noise, divide by qN. */
function train(sigma: number, seed: string) {
  const rng = seedrandom(seed);
  const membership = drawCanaryMembership(M, { seed });
  const data = dataset(membership.included, rng);
  const model = buildModel({ inputDim: DIM, numClasses: 2, hiddenUnits: 0, seed: 7 });
  const opt = tf.train.sgd(LR);
  const noise = createGaussianSource({ seed });
  const xAll = tf.tensor2d(data.x, [data.n, DIM]);
  const yAll = tf.tidy(() => tf.oneHot(tf.tensor1d(data.y, 'int32'), 2).toFloat() as tf.Tensor2D);
  for (let t = 0; t < STEPS; t++) {
    const picked: number[] = [];
    for (let i = 0; i < data.n; i++) if (rng() < Q) picked.push(i);
    if (picked.length === 0) continue; // (a real trainer would still add noise; irrelevant at this q·n)
    const idx = tf.tensor1d(picked, 'int32');
    const xb = tf.gather(xAll, idx);
    const yb = tf.gather(yAll, idx) as tf.Tensor2D;
    const { grads } = clippedGradientSum(model, xb, yb, CLIP);
    const noisy = addNoise(grads, sigma * CLIP, noise);
    const scaled = tf.tidy(() => Object.fromEntries(Object.entries(noisy).map(([k, g]) => [k, tf.div(g, Q * data.n)])));
    opt.applyGradients(scaled);
    tf.dispose([idx, xb, yb, ...Object.values(grads), ...Object.values(noisy), ...Object.values(scaled)]);
  }
  const canaries = tf.tensor2d(data.canaryX, [M, DIM]);
  const scores = lossAttackScoresForModel(model, canaries, Array.from({ length: M }, (_, i) => canaryLabel(i)));
  tf.dispose([xAll, yAll, canaries]);
  model.dispose();
  opt.dispose();
  return oneRunAudit(scores, membership, { delta: DELTA, beta: 0.05, seed });
}

describe('deliberate bug: σ = 0 while claiming ε = 1', () => {
  const claimedSigma = getNoiseMultiplier({ targetEpsilon: CLAIMED_EPSILON, delta: DELTA, sampleRate: Q, steps: STEPS });

  it('the claim itself is what the accountant says for the claimed σ', () => {
    const eps = rdpEpsilon([{ sampleRate: Q, noiseMultiplier: claimedSigma, steps: STEPS }], DELTA).epsilon;
    expect(eps).toBeLessThanOrEqual(CLAIMED_EPSILON);
    expect(eps).toBeGreaterThan(0.9);
  });

  it('the one-run audit fires: its 95% lower bound exceeds the claimed ε', () => {
    const res = train(0, 'bug');
    // Near-perfect guesses on the memorised canaries.
    expect(res.best.correct / res.best.guesses).toBeGreaterThan(0.95);
    expect(res.epsilonLowerBound).toBeGreaterThan(CLAIMED_EPSILON);
  });

  it('control: with the noise the claim requires, the bound stays at or below the claim', () => {
    const res = train(claimedSigma, 'control');
    expect(res.epsilonLowerBound).toBeLessThanOrEqual(CLAIMED_EPSILON);
  });
});
