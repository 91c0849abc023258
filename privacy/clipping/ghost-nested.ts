/**
 * Nested clipping on the ghost path (ClipOptions.nested; docs/privacy.md "Per-source influence under
 * record-level DP"):
 *
 *   g_step = Σ_G clip_C( Σ_{i∈G} sᵢ gᵢ ),   sᵢ = min(1, C/‖gᵢ‖)
 *
 * computed from the same forward/backward pass as ghost.ts, without materialising any per-example gradient:
 *   1. inner scales sᵢ from the per-example ghost norms (Goodfellow 2015: ‖aᵢδᵢᵀ‖² = ‖aᵢ‖²‖δᵢ‖²), times the
 *      influence weight wᵢ when given (sᵢ = wᵢ·min(1, C/‖gᵢ‖), types.ts ClipOptions.rowWeights);
 *   2. each group's norm of the inner-clipped sum, per Dense layer either by the Gram identity with δᵢ scaled by sᵢ
 *        ‖Σ_{i∈G} sᵢ aᵢδᵢᵀ‖² = Σ_{i,j∈G} sᵢsⱼ (aᵢ·aⱼ)(δᵢ·δⱼ)   (+ Σ sᵢsⱼ δᵢ·δⱼ for the bias),
 *      over the rows of groups with ≥ 2 examples only, or by forming each group's [D,K] sum when that is cheaper
 *      (`materialise`); the Embedding rule of ghost.ts on the sᵢ-scaled rows; outer scale c_G = min(1, C/‖·‖);
 *   3. the sum with per-example weights wᵢ = sᵢ·c_{G(i)}: Aᵀ·(w ⊙ Δ) per Dense layer.
 * For a one-example group clip_C(clip_C(g)) = clip_C(g): its c_G is set to exactly 1, and a batch of one-example
 * groups takes the per-example path bit for bit (types.ts buildUnits).
 */
import { tf } from '../../core/tf';
import { buildUnits, unitSizes } from './types';
import { clippedSums, unitQuadratic, unitSquaredNorms, type GhostPass } from './ghost-ops';

type Tensor = tf.Tensor;

/** Rows that share their unit with another row, their units renumbered 0..m-1, and which units those are. */
function multiRows(pass: GhostPass): { rows: Int32Array; unitOf: Int32Array; units: Int32Array; singleton: Float32Array } {
  const { units } = pass;
  const size = unitSizes(units);
  const renumber = new Int32Array(units.count).fill(-1);
  const multiUnits: number[] = [];
  const rows: number[] = [];
  const unitOf: number[] = [];
  units.unitOf.forEach((u, i) => {
    if (size[u] < 2) return;
    if (renumber[u] < 0) {
      renumber[u] = multiUnits.length;
      multiUnits.push(u);
    }
    rows.push(i);
    unitOf.push(renumber[u]);
  });
  const singleton = Float32Array.from(size, (n) => (n < 2 ? 1 : 0));
  return { rows: Int32Array.from(rows), unitOf: Int32Array.from(unitOf), units: Int32Array.from(multiUnits), singleton };
}

/**
 * Which way to get a Dense layer's group norms, with B rows in the batch of which M share their group, input width
 * D (0: kernel frozen) and K outputs: the Gram identity over the M rows costs ~M²(D+K); forming every group's summed
 * gradient Σ_{i∈G} sᵢaᵢδᵢᵀ (a [D,K] matrix per group) costs ~B·D·K — the per-layer choice of "mixed ghost
 * clipping" (Bu, Mao, Xu 2022). The default text model (D = 4,096, K = 2, B ≈ 320, M ≈ 200 on the honest bench
 * stream) forms the sums: clipping a step took 253 ms with the Gram matrix on wasm, 12 ms with the sums (6 ms
 * without nesting).
 */
function materialise(B: number, D: number, K: number, M: number): boolean {
  return B * Math.max(D, 1) * K < M * M * (D + K);
}

/**
 * Σ_G ‖Σ_{i∈G} aᵢ(sᵢδᵢ)ᵀ‖² (+ ‖Σ_{i∈G} sᵢδᵢ‖² for the bias) for every group, one output column at a time: column k
 * of a group's kernel gradient is Σ_{i∈G} (sᵢδᵢ)_k aᵢ, a scatter-add of the scaled rows (scatterND adds rows with
 * the same index). Works on all B rows: gathering the repeated-source rows of a [B, 4,096] input costs more on wasm
 * (~47 ms) than the whole sum.
 */
function groupSumSq(a: Tensor | undefined, sd: Tensor, bias: boolean, unitIdx: Tensor, count: number): Tensor {
  const parts: Tensor[] = [];
  const [B, K] = sd.shape as [number, number];
  if (a !== undefined) {
    const D = a.shape[1] as number;
    for (let k = 0; k < K; k++) {
      const rows = tf.mul(a, tf.slice(sd, [0, k], [B, 1]));
      parts.push(tf.sum(tf.square(tf.scatterND(unitIdx, rows, [count, D])), 1));
    }
  }
  if (bias) parts.push(tf.sum(tf.square(tf.scatterND(unitIdx, sd, [count, K])), 1));
  return parts.length === 1 ? parts[0] : tf.addN(parts);
}

/** The same by the Gram identity: Σ_{i,j∈G} (aᵢ·aⱼ + 1)(δᵢ·δⱼ), restricted to same-group pairs by Sm. */
function gramSq(am: Tensor | undefined, dm: Tensor, bias: boolean, Sm: Tensor): Tensor {
  const gd = tf.matMul(dm, dm, false, true);
  let gram: Tensor | undefined;
  if (am !== undefined) {
    gram = tf.matMul(am, am, false, true);
    if (bias) gram = tf.add(gram, 1);
  }
  return unitQuadratic(gram === undefined ? gd : tf.mul(gd, gram), Sm);
}

/** Nested clipped sum and the per-EXAMPLE pre-clip norms; runs inside ghostClippedSum's tidy. */
export function nestedGhostSums(pass: GhostPass): { grads: tf.NamedTensorMap; norms: Tensor } {
  const { steps, recs, lowest, batch, units, clipNorm, pairs, pairsEx } = pass;
  // 1. inner clip: per-example norms and sᵢ.
  const perExample = buildUnits(batch, undefined);
  const norms = tf.sqrt(unitSquaredNorms({ steps, recs, lowest, units: perExample, pairs: pairsEx }).sq);
  // Influence weights (types.ts ClipOptions.rowWeights) scale the clipped row: sᵢ ← wᵢ·sᵢ, so the unit is
  // wᵢ·clip_C(gᵢ) (norm ≤ wᵢC) and both the group norms and the sum below see the weighted rows; the outer radius
  // stays C. `norms` (returned, read by adaptive clipping) stay unweighted.
  const clip = tf.minimum(1, tf.div(clipNorm, norms));
  const s = units.weights === undefined ? clip : tf.mul(clip, tf.tensor1d(units.weights));
  const sCol = tf.reshape(s, [batch, 1]);

  // 2. outer clip: ‖Σ_{i∈G} sᵢgᵢ‖² for the groups with ≥ 2 rows (the others keep c_G = 1).
  const multi = multiRows(pass);
  const m = multi.units.length;
  const idx = tf.tensor1d(multi.rows, 'int32');
  // The repeated-source rows' unit indicator, for the Gram way only (built on first use).
  let Sm: Tensor | undefined;
  const indicator = (): Tensor => {
    if (Sm === undefined) {
      const M = multi.rows.length;
      const v = new Float32Array(M * m);
      multi.unitOf.forEach((u, r) => (v[r * m + u] = 1));
      Sm = tf.tensor2d(v, [M, m]);
    }
    return Sm;
  };
  const unitIdx = tf.tensor2d(units.unitOf, [batch, 1], 'int32');
  const multiUnits = tf.tensor1d(multi.units, 'int32');
  const terms: Tensor[] = [];
  let pairSum: Tensor | undefined;
  for (let k = lowest; k < steps.length; k++) {
    const step = steps[k];
    const { input: a, delta } = recs[k];
    if (step.kind === 'dense' && delta !== undefined && (step.kernelTrainable || step.biasTrainable)) {
      const sd = tf.mul(delta, sCol);
      const D = step.kernelTrainable ? (a.shape[1] as number) : 0;
      if (materialise(batch, D, sd.shape[1] as number, multi.rows.length)) {
        const perUnit = groupSumSq(step.kernelTrainable ? a : undefined, sd, step.biasTrainable, unitIdx, units.count);
        terms.push(tf.gather(perUnit, multiUnits));
      } else {
        terms.push(gramSq(step.kernelTrainable ? tf.gather(a, idx) : undefined, tf.gather(sd, idx), step.biasTrainable, indicator()));
      }
    } else if (step.kind === 'embedding' && delta !== undefined && pairs !== undefined) {
      // The Embedding rule of ghost.ts per (group, token) pair, on rows δ_{i,t}·sᵢ.
      const d = delta.shape[2] as number;
      const rows = tf.reshape(tf.mul(delta, tf.reshape(s, [batch, 1, 1])), [-1, d]);
      const np = pairs.pairUnit.length;
      pairSum = tf.scatterND(tf.tensor2d(pairs.pairOfToken, [pairs.pairOfToken.length, 1], 'int32'), rows, [np, d]);
      const perUnit = tf.scatterND(tf.tensor2d(pairs.pairUnit, [np, 1], 'int32'), tf.sum(tf.square(pairSum), 1), [units.count]);
      terms.push(tf.gather(perUnit, multiUnits));
    }
  }
  const groupSq = terms.length === 1 ? terms[0] : tf.addN(terms);
  const cMulti = tf.minimum(1, tf.div(clipNorm, tf.sqrt(groupSq)));
  // c per unit: c_G for the multi-row groups, exactly 1 for the singletons.
  const c = tf.add(
    tf.scatterND(tf.tensor2d(multi.units, [m, 1], 'int32'), cMulti, [units.count]),
    tf.tensor1d(multi.singleton),
  );
  const w = tf.reshape(tf.mul(s, tf.gather(c, tf.tensor1d(units.unitOf, 'int32'))), [batch, 1]);

  // 3. Σᵢ wᵢ aᵢδᵢᵀ per Dense layer; per Embedding, the group's sᵢ-scaled pair rows times c_G.
  return { grads: clippedSums(pass, w, c, pairSum, pairs), norms };
}
