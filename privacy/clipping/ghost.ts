/**
 * Ghost-norm clipping: per-example (or per-group) gradient norms and the clipped gradient sum of a chain of
 * Dense / Embedding / shape-only layers from ONE forward and ONE backward pass, without materialising any
 * per-example gradient.
 *
 * For a Dense layer z = a·W + b with δ = ∂L/∂z (L = Σᵢ ℓᵢ, so row i of δ is ∂ℓᵢ/∂zᵢ), the per-example
 * gradient is the outer product ∇W,ᵢ = aᵢ δᵢᵀ, hence (Goodfellow 2015, "Efficient per-example gradient
 * computations", eq. for ‖aᵢ δᵢᵀ‖_F):
 *   ‖∇W,ᵢ‖² = ‖aᵢ‖²·‖δᵢ‖²,   ‖∇b,ᵢ‖² = ‖δᵢ‖²,
 * and for a group G (source-level unit) the Gram identity (also used by Li et al. 2021 for sequences):
 *   ‖Σ_{i∈G} aᵢδᵢᵀ‖_F² = Σ_{i,j∈G} (aᵢ·aⱼ)(δᵢ·δⱼ)    (+ Σ_{i,j∈G} δᵢ·δⱼ for the bias).
 * With c_u = min(1, C/‖g_u‖) (Abadi et al. 2016, Alg. 1 "clip gradient") the clipped sum is one matmul per
 * layer: Σᵢ c_{u(i)} aᵢδᵢᵀ = Aᵀ·(c ⊙ Δ).
 *
 * Embedding rule: example i looks up rows idx_{i,t}; its gradient scatters δ_{i,t} into those rows, so when a
 * token repeats (within an example, or within a group) the rows are SUMMED before squaring:
 *   ‖∇E,u‖² = Σ_{v} ‖Σ_{(i,t)∈u : idx_{i,t}=v} δ_{i,t}‖².
 * We form one row per distinct (unit, token) pair with a scatter-add, square it, and scatter-add per unit.
 * This is exact. The shortcut Σ_t ‖δ_t‖² is NOT: it drops the cross terms 2δ_t·δ_s of repeated rows, which
 * can be negative or positive, so it can under-estimate the norm and break the sensitivity bound C.
 */
import { TayguardError } from '../../core/errors';
import { tf } from '../../core/tf';
import { varName, type Activation, type GhostPlan } from './plan';
import { checkFiniteNorms, type ClippedGradients, type Units } from './types';

type Tensor = tf.Tensor;

interface Record_ {
  input: Tensor;
  out: Tensor;
  /** ∂L/∂(pre-activation) for Dense, ∂L/∂(looked-up rows) for Embedding. */
  delta?: Tensor;
  shapeIn?: number[];
}

/** Fusable into the wasm/cpu _FusedMatMul kernel; tanh and softmax are applied after a linear matmul. */
const FUSABLE: ReadonlySet<Activation> = new Set<Activation>(['linear', 'relu', 'sigmoid']);

function activate(act: Activation, z: Tensor): Tensor {
  switch (act) {
    case 'linear':
      return z;
    case 'relu':
      return tf.relu(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'tanh':
      return tf.tanh(z);
    case 'softmax':
      return tf.softmax(z);
  }
}

/** Chain rule through an elementwise activation, expressed with the OUTPUT h = act(z) (no z kept). */
function activationGrad(act: Activation, g: Tensor, h: Tensor): Tensor {
  switch (act) {
    case 'linear':
      return g;
    case 'relu':
      // h > 0 ⇔ z > 0: same subgradient (0 at z = 0) as tfjs's Relu gradient, step(z).
      return tf.mul(g, tf.step(h));
    case 'sigmoid':
      return tf.mul(g, tf.mul(h, tf.sub(1, h)));
    case 'tanh':
      return tf.mul(g, tf.sub(1, tf.square(h)));
    case 'softmax':
      // Jacobian-vector product of softmax: h ⊙ (g − ⟨g, h⟩).
      return tf.mul(h, tf.sub(g, tf.sum(tf.mul(g, h), -1, true)));
  }
}

interface TokenPairs {
  /** Token (flattened b·T+t) → distinct (unit, vocab row) pair. */
  pairOfToken: Int32Array;
  pairUnit: Int32Array;
  pairRow: Int32Array;
}

/** Read the (integer) token ids from x and group equal (unit, token) pairs — see the Embedding rule above. */
function tokenPairs(x: Tensor, vocab: number, units: Units): TokenPairs {
  const ids = x.dataSync();
  const [batch, len] = x.shape;
  const pairOfToken = new Int32Array(ids.length);
  const pairUnit: number[] = [];
  const pairRow: number[] = [];
  const seen = new Map<number, number>();
  for (let b = 0; b < batch; b++) {
    const unit = units.unitOf[b];
    for (let t = 0; t < len; t++) {
      const v = ids[b * len + t];
      if (!Number.isInteger(v) || v < 0 || v >= vocab) {
        throw new TayguardError(
          'ARGUMENT_INVALID',
          `token id ${v} at [${b}, ${t}] is not an integer in [0, ${vocab}); map out-of-vocabulary tokens to a ` +
            'reserved id before training',
        );
      }
      const key = unit * vocab + v;
      let p = seen.get(key);
      if (p === undefined) {
        p = pairUnit.length;
        seen.set(key, p);
        pairUnit.push(unit);
        pairRow.push(v);
      }
      pairOfToken[b * len + t] = p;
    }
  }
  return { pairOfToken, pairUnit: Int32Array.from(pairUnit), pairRow: Int32Array.from(pairRow) };
}

/**
 * Aᵀ·D. The wasm backend's matMul with transposeA is ~9× slower than a plain matMul on a pre-transposed
 * copy (measured 46 ms vs 5 ms for [256,784]ᵀ·[256,256], bench/clipping.ts); on cpu the opposite holds
 * (the transpose costs more than it saves), so only wasm gets the explicit transpose.
 */
function transposeAMatMul(a: Tensor, d: Tensor): Tensor {
  return tf.getBackend() === 'wasm' ? tf.matMul(tf.transpose(a), d) : tf.matMul(a, d, true, false);
}

/** Σ over units of a [B,B] Gram kernel restricted to same-unit pairs: diag(Sᵀ K S) with S the unit one-hot. */
function unitQuadratic(K: Tensor, S: Tensor): Tensor {
  return tf.sum(tf.mul(tf.matMul(K, S), S), 0);
}

/** S[i, u] = 1 when example i belongs to unit u (built on the host: tf.oneHot refuses depth 1). */
function unitIndicator(units: Units): Tensor {
  const batch = units.unitOf.length;
  const s = new Float32Array(batch * units.count);
  for (let i = 0; i < batch; i++) s[i * units.count + units.unitOf[i]] = 1;
  return tf.tensor2d(s, [batch, units.count]);
}

export function ghostClippedSum(
  plan: GhostPlan,
  x: Tensor,
  yOneHot: tf.Tensor2D,
  clipNorm: number,
  units: Units,
): ClippedGradients {
  const steps = plan.steps;
  const batch = x.shape[0];
  const first = steps[0];
  const pairs = first.kind === 'embedding' && first.trainable ? tokenPairs(x, first.vocab, units) : undefined;

  const out = tf.tidy(() => {
    // ---- forward: keep each layer's input and output (Goodfellow 2015 needs aᵢ and δᵢ per layer) ----
    const recs: Record_[] = [];
    let h: Tensor = x;
    for (const step of steps) {
      const rec: Record_ = { input: h, out: h };
      switch (step.kind) {
        case 'embedding':
          rec.out = tf.gather(step.table.read(), tf.cast(h, 'int32'));
          break;
        case 'dense': {
          const W = step.kernel.read();
          const bias = step.bias?.read();
          const act: Activation = step.logits ? 'linear' : step.act;
          if (FUSABLE.has(act)) {
            rec.out = tf.fused.matMul({ a: h, b: W, bias, activation: act as 'linear' | 'relu' | 'sigmoid' });
          } else {
            rec.out = activate(act, tf.fused.matMul({ a: h, b: W, bias }));
          }
          break;
        }
        case 'flatten':
          rec.shapeIn = h.shape;
          rec.out = tf.reshape(h, [h.shape[0], -1]);
          break;
        case 'activation':
          rec.out = step.logits ? h : activate(step.act, h);
          break;
        case 'identity':
          break;
      }
      recs.push(rec);
      h = rec.out;
    }

    // ---- backward by hand: ∂/∂logits of Σᵢ −yᵢ·log softmax(zᵢ) is softmax(zᵢ)·Σ_k y_ik − yᵢ ----
    const logits = h;
    if (logits.rank !== 2 || logits.shape[1] !== yOneHot.shape[1] || yOneHot.shape[0] !== batch) {
      throw new TayguardError(
        'ARGUMENT_INVALID',
        `logits have shape [${logits.shape}] but yOneHot has shape [${yOneHot.shape}]; pass one one-hot row ` +
          'per example with as many columns as the model has outputs',
      );
    }
    let g: Tensor = tf.sub(tf.mul(tf.softmax(logits), tf.sum(yOneHot, 1, true)), yOneHot);
    // Only propagate further down while some earlier layer still has trainable parameters.
    const trainableAt = steps.map((s) =>
      s.kind === 'dense' ? s.kernelTrainable || s.biasTrainable : s.kind === 'embedding' && s.trainable,
    );
    let lowest = trainableAt.indexOf(true);
    if (lowest < 0) lowest = steps.length;
    for (let k = steps.length - 1; k >= lowest; k--) {
      const step = steps[k];
      const rec = recs[k];
      switch (step.kind) {
        case 'dense':
          rec.delta = step.logits ? g : activationGrad(step.act, g, rec.out);
          if (k > lowest) g = tf.matMul(rec.delta, step.kernel.read(), false, true);
          break;
        case 'activation':
          if (!step.logits) g = activationGrad(step.act, g, rec.out);
          break;
        case 'flatten':
          g = tf.reshape(g, rec.shapeIn as number[]);
          break;
        case 'embedding':
          rec.delta = g;
          break;
        case 'identity':
          break;
      }
    }

    // ---- per-unit squared norms, summed over all layers ----
    const S = units.perExample ? undefined : unitIndicator(units);
    const terms: Tensor[] = [];
    let pairSum: Tensor | undefined;
    for (let k = lowest; k < steps.length; k++) {
      const step = steps[k];
      const { input: a, delta } = recs[k];
      if (step.kind === 'dense' && delta !== undefined && (step.kernelTrainable || step.biasTrainable)) {
        if (S === undefined) {
          // ‖aᵢ‖²‖δᵢ‖² + ‖δᵢ‖² = ‖δᵢ‖²(‖aᵢ‖² + 1)
          const dsq = tf.sum(tf.square(delta), 1);
          const asq = step.kernelTrainable ? tf.sum(tf.square(a), 1) : undefined;
          const factor = asq === undefined ? undefined : step.biasTrainable ? tf.add(asq, 1) : asq;
          terms.push(factor === undefined ? dsq : tf.mul(dsq, factor));
        } else {
          const gd = tf.matMul(delta, delta, false, true);
          const ga = step.kernelTrainable ? tf.matMul(a, a, false, true) : undefined;
          const gram = ga === undefined ? undefined : step.biasTrainable ? tf.add(ga, 1) : ga;
          terms.push(unitQuadratic(gram === undefined ? gd : tf.mul(gd, gram), S));
        }
      } else if (step.kind === 'embedding' && delta !== undefined && pairs !== undefined) {
        const d = delta.shape[2] as number;
        const rows = tf.reshape(delta, [-1, d]);
        const np = pairs.pairUnit.length;
        // scatterND accumulates duplicate indices: the "sum rows with equal index first" rule.
        pairSum = tf.scatterND(tf.tensor2d(pairs.pairOfToken, [pairs.pairOfToken.length, 1], 'int32'), rows, [np, d]);
        const pairSq = tf.sum(tf.square(pairSum), 1);
        terms.push(tf.scatterND(tf.tensor2d(pairs.pairUnit, [np, 1], 'int32'), pairSq, [units.count]));
      }
    }
    const sq = terms.length === 1 ? terms[0] : tf.addN(terms);
    const norms = tf.sqrt(sq);
    // c_u = min(1, C/‖g_u‖); ‖g_u‖ = 0 gives C/0 = +Inf → 1.
    const c = tf.minimum(1, tf.div(clipNorm, norms));
    const cEx = S === undefined ? c : tf.gather(c, tf.tensor1d(units.unitOf, 'int32'));
    const cCol = tf.reshape(cEx, [batch, 1]);

    // ---- clipped sums: Aᵀ·(c ⊙ Δ) per Dense layer, scatter of clipped pair rows per Embedding ----
    const grads: tf.NamedTensorMap = {};
    for (let k = lowest; k < steps.length; k++) {
      const step = steps[k];
      const { input: a, delta } = recs[k];
      if (step.kind === 'dense' && delta !== undefined) {
        const cd = tf.mul(delta, cCol);
        if (step.kernelTrainable) grads[varName(step.kernel)] = transposeAMatMul(a, cd);
        if (step.biasTrainable && step.bias) grads[varName(step.bias)] = tf.sum(cd, 0);
      } else if (step.kind === 'embedding' && pairSum !== undefined && pairs !== undefined) {
        const np = pairs.pairUnit.length;
        const cPair = tf.gather(c, tf.tensor1d(pairs.pairUnit, 'int32'));
        grads[varName(step.table)] = tf.scatterND(
          tf.tensor2d(pairs.pairRow, [np, 1], 'int32'),
          tf.mul(pairSum, tf.reshape(cPair, [np, 1])),
          step.table.shape as number[],
        );
      }
    }
    return { grads, norms };
  });

  // The single device→host read of the step: the pre-clip norms the caller logs / audits.
  const norms = new Float32Array(out.norms.dataSync());
  out.norms.dispose();
  checkFiniteNorms(norms, out.grads);
  return { grads: out.grads, norms, path: 'ghost', groupIds: units.groupIds };
}
