/**
 * A record as the MODEL sees it, for the screens that work in feature space (near-duplicate, rare-feature):
 * the featurizer's row (middleware/featurize.ts: hashed text buckets, or the dense `features`), read once per
 * record and shared by those screens. Looking where the model looks is what makes these screens robust to
 * surface edits: a paraphrase that keeps most words keeps most buckets, and 40 different tokens that hash into
 * one bucket are one feature to the model and one feature here.
 *
 * Bounded cost: at most `maxNonZeros` non-zeros are kept (text: buckets in order of first occurrence); the tokenizer is linear in the text, whose length the schema stage caps; a dense row is read once
 * (its width is the model's, fixed by configuration).
 */
import type { TrainingRecord } from '../core/record';
import type { Payload } from '../middleware/featurize';
import { scan, type Tokens } from './rare-token';

/** What the view needs of a featurizer (middleware/featurize.ts `Featurizer` has these). */
export interface FeatureSource {
  readonly kind: 'text' | 'dense';
  readonly dim: number;
  encodeInto(payload: Payload, out: Float32Array, offset: number): void;
  encodeSparse?(payload: Payload): { indices: number[]; values: number[] };
  describe?(): Record<string, unknown>;
}

export interface FeatureRow {
  readonly kind: 'text' | 'dense';
  readonly dim: number;
  /** Non-zeros kept (≤ the cap): `indices[0..n)`, `values[0..n)`. Reused between records: copy what you keep. */
  readonly n: number;
  readonly indices: Int32Array;
  readonly values: Float32Array;
  /** Dense models: the whole row (zeros included), also reused. */
  readonly dense?: Float32Array;
}

export type FeatureView = (record: TrainingRecord) => FeatureRow;

/**
 * True for middleware/featurize.ts's hashed text featurizer: then the row is built here from rare-token.ts's
 * `scan` (the same tokens and FNV-1a hashes as `tokenize` + `fnv1a`, checked on the whole corpus by the tests)
 * with the same log1p / L2 weighting. Any other featurizer is asked directly.
 */
function isHashedText(source: FeatureSource): boolean {
  const d = source.describe?.();
  return source.kind === 'text' && d?.hash === 'fnv1a32' && d?.weighting === 'log1p-l2' && d?.tokenizer === 'lowercase [\\p{L}\\p{N}]+';
}

/**
 * One featurization per record for every screen that asks: the last record's row is kept, keyed by the record
 * object (the chain hands the same object to each stage), so two feature-space screens cost one featurization.
 */
export function featureView(source: FeatureSource, maxNonZeros: number): FeatureView {
  const cap = Math.max(1, Math.floor(maxNonZeros));
  const indices = new Int32Array(cap);
  const values = new Float32Array(cap);
  const dense = source.kind === 'dense' ? new Float32Array(source.dim) : undefined;
  const fast = isHashedText(source);
  const toks: Tokens = { lower: '', words: undefined, starts: [], ends: [], hashes: [] };
  const counts = new Map<number, number>();
  let last: TrainingRecord | undefined;
  let row: FeatureRow = { kind: source.kind, dim: source.dim, n: 0, indices, values, dense };

  const denseRow = (): number => {
    if (!dense) return 0;
    let n = 0;
    for (let j = 0; j < dense.length; j++) {
      const v = dense[j];
      if (!Number.isFinite(v)) dense[j] = 0;
      else if (v !== 0 && n < cap) {
        indices[n] = j;
        values[n++] = v;
      }
    }
    return n;
  };

  return (record) => {
    if (record === last) return row;
    let n = 0;
    if (dense) {
      dense.fill(0);
      source.encodeInto(record, dense, 0);
      n = denseRow();
    } else {
      const text = record.text ?? '';
      if (fast) {
        const k = scan(text, 1, text.length + 1, toks);
        counts.clear();
        for (let i = 0; i < k; i++) {
          const j = toks.hashes[i] % source.dim;
          counts.set(j, (counts.get(j) ?? 0) + 1);
        }
        let sq = 0;
        for (const c of counts.values()) sq += Math.log1p(c) ** 2;
        const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
        for (const [j, c] of counts) {
          if (n >= cap) break;
          indices[n] = j;
          values[n++] = Math.log1p(c) * inv;
        }
      } else {
        if (source.encodeSparse) {
          const s = source.encodeSparse(record);
          n = Math.min(cap, s.indices.length);
          for (let i = 0; i < n; i++) {
            indices[i] = s.indices[i];
            values[i] = s.values[i];
          }
        } else {
          const tmp = new Float32Array(source.dim);
          source.encodeInto(record, tmp, 0);
          for (let j = 0; j < tmp.length && n < cap; j++) {
            if (tmp[j] !== 0) {
              indices[n] = j;
              values[n++] = tmp[j];
            }
          }
        }
      }
    }
    last = record;
    row = { kind: source.kind, dim: source.dim, n, indices, values, dense };
    return row;
  };
}
