/**
 * Influence weights in the clipping (ClipOptions.rowWeights; docs/privacy.md "Influence by account age"): each
 * example's clipped gradient is scaled by wᵢ ∈ [0, 1] AFTER the inner clip. Checked against the float64 reference of
 * test/helpers/clipping-reference.ts on real tfjs models, for random batches, groups and weights:
 *   - per-example units: Σ wᵢ·clip_C(gᵢ); nested: Σ_G clip_C(Σ_{i∈G} wᵢ·clip_C(gᵢ)) (outer radius C fixed);
 *     flat groups (source level): Σ_G min_{i∈G}wᵢ · clip_C(Σ_{i∈G} gᵢ) — on both paths;
 *   - removing any one example moves the nested sum by ≤ C·wᵢ; each group adds ≤ C;
 *   - the norms are the unweighted ones (adaptive clipping reads them);
 *   - all weights 1 is bit-identical to no weights; weights outside [0, 1] are refused.
 */
import fc from 'fast-check';
import seedrandom from 'seedrandom';
import { initTf, tf } from '../../../core/tf';
import { clippedGradientSum, type ClipPath } from '../../../privacy/clipping';
import { clip, diff, flat, kinds, labels, norm, perExampleGrads, type Kind } from '../../helpers/clipping-reference';

beforeAll(async () => {
  await initTf();
});

const PATHS = ['ghost', 'microbatch'] as const;

/** Σ_G clip_C(Σ_{i∈G} wᵢ·clip_C(gᵢ)) in float64, and each group's term. */
function weightedNested(g: Float64Array[], groups: Int32Array, w: Float32Array, C: number): { sum: Float64Array; terms: Float64Array[] } {
  const inner = new Map<number, Float64Array>();
  g.forEach((gi, i) => {
    const acc = inner.get(groups[i]) ?? new Float64Array(gi.length);
    clip(gi, C).forEach((v, k) => (acc[k] += w[i] * v));
    inner.set(groups[i], acc);
  });
  const sum = new Float64Array(g[0].length);
  const terms = [...inner.values()].map((s) => clip(s, C));
  for (const t of terms) t.forEach((v, k) => (sum[k] += v));
  return { sum, terms };
}

/** Σᵢ wᵢ·clip_C(gᵢ). */
function weightedPerExample(g: Float64Array[], w: Float32Array, C: number): Float64Array {
  const sum = new Float64Array(g[0].length);
  g.forEach((gi, i) => clip(gi, C).forEach((v, k) => (sum[k] += w[i] * v)));
  return sum;
}

/** Σ_G (min_{i∈G} wᵢ)·clip_C(Σ_{i∈G} gᵢ). */
function weightedGroups(g: Float64Array[], groups: Int32Array, w: Float32Array, C: number): Float64Array {
  const inner = new Map<number, { s: Float64Array; w: number }>();
  g.forEach((gi, i) => {
    const e = inner.get(groups[i]) ?? { s: new Float64Array(gi.length), w: 1 };
    gi.forEach((v, k) => (e.s[k] += v));
    e.w = Math.min(e.w, w[i]);
    inner.set(groups[i], e);
  });
  const sum = new Float64Array(g[0].length);
  for (const { s, w: wg } of inner.values()) clip(s, C).forEach((v, k) => (sum[k] += wg * v));
  return sum;
}

const close = (got: Float64Array, want: Float64Array): void => expect(norm(diff(got, want))).toBeLessThanOrEqual(1e-4 * norm(want) + 1e-6);

const without = (t: tf.Tensor, i: number): tf.Tensor => tf.gather(t, tf.tensor1d(Array.from({ length: t.shape[0] }, (_, k) => k).filter((k) => k !== i), 'int32'));

describe.each(kinds)('influence-weighted clipping, %s', (_name, make) => {
  let kind: Kind;
  beforeAll(() => {
    kind = make();
  });
  const sum = (x: tf.Tensor, y: tf.Tensor2D, C: number, path: ClipPath, opts: { groups?: Int32Array; nested?: boolean; rowWeights?: Float32Array }) =>
    flat(kind.model, clippedGradientSum(kind.model, x, y, C, { path, ...opts }).grads);

  it('equals the float64 reference on both paths (per example, nested, source groups); one example moves the nested sum by ≤ C·wᵢ; each group adds ≤ C', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        fc.double({ min: 0.05, max: 3, noNaN: true }),
        (n, nGroups, seed, cScale) => {
          const rng = seedrandom(String(seed));
          const groups = Int32Array.from({ length: n }, () => 10 + Math.floor(rng() * nGroups));
          // A mix of mature (1), brand-new (0.1), in-between and zero weights.
          const rowWeights = Float32Array.from({ length: n }, () => [1, 0.1, rng(), 0][Math.floor(rng() * 4)]);
          const x = kind.x(n, rng);
          const y = labels(n, kind.classes, rng);
          try {
            const g = perExampleGrads(kind, x, y);
            const C = cScale * Math.max(...g.map(norm)) * 0.5 + 1e-3;
            const ref = weightedNested(g, groups, rowWeights, C);
            for (const path of PATHS) {
              close(sum(x, y, C, path, { groups, nested: true, rowWeights }), ref.sum);
              close(sum(x, y, C, path, { rowWeights }), weightedPerExample(g, rowWeights, C));
              close(sum(x, y, C, path, { groups, rowWeights }), weightedGroups(g, groups, rowWeights, C));
              // The norms adaptive clipping reads are the unweighted ones.
              const weighted = clippedGradientSum(kind.model, x, y, C, { path, groups, nested: true, rowWeights });
              const plain = clippedGradientSum(kind.model, x, y, C, { path, groups, nested: true });
              expect(Array.from(weighted.norms)).toEqual(Array.from(plain.norms));
              tf.dispose([...Object.values(weighted.grads), ...Object.values(plain.grads)]);
            }
            for (const t of ref.terms) expect(norm(t)).toBeLessThanOrEqual(C * (1 + 1e-9));
            for (const path of PATHS) {
              const full = sum(x, y, C, path, { groups, nested: true, rowWeights });
              for (let i = 0; i < n; i++) {
                const xi = without(x, i);
                const yi = without(y, i) as tf.Tensor2D;
                const keep = (_: number, k: number) => k !== i;
                const rest = sum(xi, yi, C, path, { groups: groups.filter(keep), nested: true, rowWeights: rowWeights.filter(keep) });
                tf.dispose([xi, yi]);
                expect(norm(diff(full, rest))).toBeLessThanOrEqual(C * rowWeights[i] * (1 + 1e-4) + 1e-6);
              }
            }
          } finally {
            tf.dispose([x, y]);
          }
        },
      ),
      { numRuns: 8, seed: 20261129 },
    );
  });

  it('weights all 1 are bit-identical to no weights, on both paths, per example, nested and in source groups', () => {
    const rng = seedrandom('ones');
    const x = kind.x(7, rng);
    const y = labels(7, kind.classes, rng);
    const groups = Int32Array.from([1, 1, 2, 3, 3, 3, 4]);
    const ones = new Float32Array(7).fill(1);
    const C = 0.5 * Math.max(...perExampleGrads(kind, x, y).map(norm));
    for (const path of PATHS) {
      for (const opts of [{}, { groups, nested: true }, { groups }]) {
        expect(Array.from(sum(x, y, C, path, { ...opts, rowWeights: ones }))).toEqual(Array.from(sum(x, y, C, path, opts)));
      }
    }
    tf.dispose([x, y]);
  });

  it('a flood from many brand-new accounts: each adds min(C, k·w_min·C) — w_min of a mature account with one record a step, and at most C however many', () => {
    const rng = seedrandom('young-flood');
    const one = kind.x(1, rng);
    const y1 = labels(1, kind.classes, rng);
    const C = 0.8 * norm(perExampleGrads(kind, one, y1)[0]);
    const copies = (n: number) => [tf.tile(one, [n, ...one.shape.slice(1).map(() => 1)]), tf.tile(y1, [n, 1]) as tf.Tensor2D] as const;
    for (const path of PATHS) {
      // 30 accounts with one record each: the weight is all there is, young = w_min·mature.
      const [x1, yy1] = copies(30);
      const g1 = Int32Array.from({ length: 30 }, (_, i) => i);
      const mature1 = sum(x1, yy1, C, path, { groups: g1, nested: true });
      const young1 = sum(x1, yy1, C, path, { groups: g1, nested: true, rowWeights: new Float32Array(30).fill(0.1) });
      expect(norm(young1)).toBeLessThanOrEqual(0.1 * norm(mature1) * (1 + 1e-4));
      expect(norm(young1)).toBeGreaterThan(0.0999 * norm(mature1));
      // 30 accounts with 3 records each: a mature account is held to C by the nesting, a young one adds 3·0.1·C.
      const [x3, yy3] = copies(90);
      const g3 = Int32Array.from({ length: 90 }, (_, i) => Math.floor(i / 3));
      const mature3 = sum(x3, yy3, C, path, { groups: g3, nested: true });
      const young3 = sum(x3, yy3, C, path, { groups: g3, nested: true, rowWeights: new Float32Array(90).fill(0.1) });
      expect(norm(young3)).toBeLessThanOrEqual(0.3 * norm(mature3) * (1 + 1e-4));
      expect(norm(young3)).toBeGreaterThan(0.299 * norm(mature3));
      // One young account sending 40 records in a step reaches the per-account bound C, no more (outer radius fixed).
      const [x40, y40] = copies(40);
      const young40 = sum(x40, y40, C, path, { groups: new Int32Array(40).fill(1), nested: true, rowWeights: new Float32Array(40).fill(0.1) });
      expect(norm(young40)).toBeLessThanOrEqual(C * (1 + 1e-4));
      expect(norm(young40)).toBeGreaterThan(0.999 * C);
      tf.dispose([x1, yy1, x3, yy3, x40, y40]);
    }
    tf.dispose([one, y1]);
  });
});

it('refuses weights of the wrong length or outside [0, 1] with ARGUMENT_INVALID', () => {
  const [, make] = kinds[1];
  const { model } = make();
  const x = tf.ones([2, 4]);
  const y = tf.tensor2d([[1, 0, 0], [0, 1, 0]]) as tf.Tensor2D;
  for (const rowWeights of [Float32Array.of(1), Float32Array.of(1, 1.5), Float32Array.of(0.5, NaN), Float32Array.of(-0.1, 1)]) {
    expect(() => clippedGradientSum(model, x, y, 1, { rowWeights })).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID', message: expect.stringMatching(/rowWeights/) }));
  }
  tf.dispose([x, y]);
});
