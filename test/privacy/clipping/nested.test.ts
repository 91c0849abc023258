/**
 * Nested clipping (ClipOptions.nested; docs/privacy.md "Per-source influence under record-level DP"):
 * g = Σ_G clip_C(Σ_{i∈G} clip_C(g_i)). Checked against an independent reference (one tf.variableGrads per
 * example on the model's own output, the nesting done in float64 here), on real tfjs models of the kinds the
 * service builds (hashed-text logistic regression, an MLP) and an Embedding chain, for random batches and groups:
 *   - both paths (ghost, microbatch) equal the reference;
 *   - removing any one example moves the sum by ≤ C (the record-level sensitivity the accountant is charged);
 *   - each group's whole contribution has norm ≤ C, however many examples it has;
 *   - with one example per group it IS per-example clipping, bit for bit.
 */
import fc from 'fast-check';
import seedrandom from 'seedrandom';
import { hasCode } from '../../../core/errors';
import { initTf, tf } from '../../../core/tf';
import { buildModel } from '../../../middleware/build';
import { clippedGradientSum, type ClipPath } from '../../../privacy/clipping';
import { diff, flat, kinds, labels, norm, perExampleGrads, reference, type Kind } from '../../helpers/clipping-reference';

beforeAll(async () => {
  await initTf();
});

function nested(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor2D, C: number, groups: Int32Array, path: ClipPath): Float64Array {
  return flat(model, clippedGradientSum(model, x, y, C, { groups, nested: true, path }).grads);
}

const without = (t: tf.Tensor, i: number): tf.Tensor => tf.gather(t, tf.tensor1d(Array.from({ length: t.shape[0] }, (_, k) => k).filter((k) => k !== i), 'int32'));

describe.each(kinds)('nested clipping, %s', (_name, make) => {
  let kind: Kind;
  beforeAll(() => {
    kind = make();
  });

  it('ghost = microbatch = reference; removing any one example moves the sum by ≤ C; each group adds ≤ C', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        fc.double({ min: 0.05, max: 3, noNaN: true }),
        (n, nGroups, seed, cScale) => {
          const rng = seedrandom(String(seed));
          const groups = Int32Array.from({ length: n }, () => 10 + Math.floor(rng() * nGroups));
          const x = kind.x(n, rng);
          const y = labels(n, kind.classes, rng);
          try {
            const g = perExampleGrads(kind, x, y);
            // C around the typical per-example norm, so inner and outer clips both bite in some cases.
            const C = cScale * Math.max(...g.map(norm)) * 0.5 + 1e-3;
            const ref = reference(g, groups, C);
            for (const path of ['ghost', 'microbatch'] as const) {
              const got = nested(kind.model, x, y, C, groups, path);
              expect(norm(diff(got, ref.sum))).toBeLessThanOrEqual(1e-4 * norm(ref.sum) + 1e-6);
            }
            for (const t of ref.terms.values()) expect(norm(t)).toBeLessThanOrEqual(C * (1 + 1e-9));
            const full = nested(kind.model, x, y, C, groups, 'ghost');
            for (let i = 0; i < n; i++) {
              const xi = without(x, i);
              const yi = without(y, i) as tf.Tensor2D;
              const rest = nested(kind.model, xi, yi, C, groups.filter((_, k) => k !== i), 'ghost');
              tf.dispose([xi, yi]);
              expect(norm(diff(full, rest))).toBeLessThanOrEqual(C + 1e-5);
            }
            // Each group's whole contribution, as the clipping code computes it (its rows alone), has norm ≤ C.
            for (const id of new Set(groups)) {
              const rows = Array.from({ length: n }, (_, k) => k).filter((k) => groups[k] === id);
              const idx = tf.tensor1d(rows, 'int32');
              const xg = tf.gather(x, idx);
              const yg = tf.gather(y, idx) as tf.Tensor2D;
              for (const path of ['ghost', 'microbatch'] as const) {
                expect(norm(nested(kind.model, xg, yg, C, new Int32Array(rows.length).fill(id), path))).toBeLessThanOrEqual(C + 1e-5);
              }
              tf.dispose([idx, xg, yg]);
            }
          } finally {
            tf.dispose([x, y]);
          }
        },
      ),
      { numRuns: 15, seed: 20261128 },
    );
  });

  it('one source sending many copies of a record adds no more than one copy does (the flood bound)', () => {
    const rng = seedrandom('flood');
    const one = kind.x(1, rng);
    const y1 = labels(1, kind.classes, rng);
    const many = tf.tile(one, [40, ...one.shape.slice(1).map(() => 1)]);
    const yMany = tf.tile(y1, [40, 1]) as tf.Tensor2D;
    const g = perExampleGrads(kind, one, y1)[0];
    const C = norm(g) * 0.8; // the record alone is clipped, so the flood is at the bound
    for (const path of ['ghost', 'microbatch'] as const) {
      const single = nested(kind.model, one, y1, C, Int32Array.of(1), path);
      const flood = nested(kind.model, many, yMany, C, new Int32Array(40).fill(1), path);
      expect(norm(diff(flood, single))).toBeLessThanOrEqual(1e-4 * C);
      // Without the outer clip (per-record clipping only) the same flood is 40× larger.
      const perRecord = flat(kind.model, clippedGradientSum(kind.model, many, yMany, C, { path }).grads);
      expect(norm(perRecord)).toBeGreaterThan(39 * C);
    }
    tf.dispose([one, y1, many, yMany]);
  });

  it('with one example per group it equals per-example clipping exactly, on both paths', () => {
    const rng = seedrandom('unique');
    const x = kind.x(8, rng);
    const y = labels(8, kind.classes, rng);
    const C = 0.5 * Math.max(...perExampleGrads(kind, x, y).map(norm));
    for (const path of ['ghost', 'microbatch'] as const) {
      const plain = clippedGradientSum(kind.model, x, y, C, { path });
      const got = clippedGradientSum(kind.model, x, y, C, { groups: Int32Array.from([9, 3, 4, 8, 1, 0, 6, 2]), nested: true, path });
      expect(got.groupIds).toBeUndefined();
      expect(Array.from(got.norms)).toEqual(Array.from(plain.norms));
      expect(Array.from(flat(kind.model, got.grads))).toEqual(Array.from(flat(kind.model, plain.grads)));
    }
    tf.dispose([x, y]);
  });

  it('returns per-example norms and leaks no tensors', () => {
    const rng = seedrandom('leak');
    const x = kind.x(6, rng);
    const y = labels(6, kind.classes, rng);
    const groups = Int32Array.from([1, 1, 2, 3, 3, 3]);
    for (const path of ['ghost', 'microbatch'] as const) {
      const warm = clippedGradientSum(kind.model, x, y, 1, { groups, nested: true, path });
      expect(warm.norms.length).toBe(6);
      expect(warm.groupIds).toBeUndefined();
      flat(kind.model, warm.grads);
      const before = tf.memory().numTensors;
      flat(kind.model, clippedGradientSum(kind.model, x, y, 1, { groups, nested: true, path }).grads);
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose([x, y]);
  });
});

it('nested without groups is refused with ARGUMENT_INVALID', () => {
  const model = buildModel({ inputDim: 4, numClasses: 2, hiddenUnits: 0, seed: 1 });
  const x = tf.ones([2, 4]);
  const y = tf.tensor2d([[1, 0], [0, 1]]);
  expect(() => clippedGradientSum(model, x, y, 1, { nested: true })).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
  expect(hasCode).toBeDefined();
  tf.dispose([x, y]);
});
