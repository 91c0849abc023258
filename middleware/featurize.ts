/**
 * Records → model inputs. Text uses the hashing trick (Weinberger et al. 2009): tokens hashed into a fixed
 * number of buckets, so the vocabulary never has to be known or stored, and a new word cannot grow the model.
 */
import type { TrainingRecord } from '../core/record';

export type Payload = Pick<TrainingRecord, 'text' | 'features'>;

export interface Featurizer {
  readonly kind: 'text' | 'dense';
  readonly dim: number;
  /** Writes one row of length `dim` into `out` at `offset` (the row is zero on entry). */
  encodeInto(payload: Payload, out: Float32Array, offset: number): void;
  /** The same row as (index, value) pairs of its non-zeros, when the featurizer is naturally sparse. */
  encodeSparse?(payload: Payload): { indices: number[]; values: number[] };
  /** What a learner that hot-loads a published model needs to featurize the same way. */
  describe(): Record<string, unknown>;
}

const TOKEN = /[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu;

export function tokenize(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

/** 32-bit FNV-1a over UTF-16 code units: fast, stable across platforms, good enough spread for bucketing. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The hashed-text row of bucket counts: log(1+count) damps repeated words ("buy buy buy …"); L2 normalisation then
 * gives every row norm 1, which bounds each record's input scale whatever its length.
 */
export function bucketCountsToRow(counts: ReadonlyMap<number, number>): { indices: number[]; values: number[] } {
  let sq = 0;
  for (const c of counts.values()) sq += Math.log1p(c) ** 2;
  const inv = sq > 0 ? 1 / Math.sqrt(sq) : 0;
  const indices: number[] = [];
  const values: number[] = [];
  for (const [j, c] of counts) {
    indices.push(j);
    values.push(Math.log1p(c) * inv);
  }
  return { indices, values };
}

export function hashedTextFeaturizer(dim: number): Featurizer {
  const encodeSparse = (payload: Payload) => {
    const counts = new Map<number, number>();
    for (const t of tokenize(payload.text ?? '')) {
      const j = fnv1a(t) % dim;
      counts.set(j, (counts.get(j) ?? 0) + 1);
    }
    return bucketCountsToRow(counts);
  };
  return {
    kind: 'text',
    dim,
    encodeSparse,
    encodeInto(payload, out, offset) {
      const { indices, values } = encodeSparse(payload);
      for (let i = 0; i < indices.length; i++) out[offset + indices[i]] = values[i];
    },
    describe: () => ({ kind: 'text', dim, hash: 'fnv1a32', tokenizer: 'lowercase [\\p{L}\\p{N}]+', weighting: 'log1p-l2' }),
  };
}

export function denseFeaturizer(dim: number): Featurizer {
  return {
    kind: 'dense',
    dim,
    encodeInto(payload, out, offset) {
      const f = payload.features ?? [];
      for (let j = 0; j < dim; j++) out[offset + j] = f[j] ?? 0;
    },
    describe: () => ({ kind: 'dense', dim }),
  };
}

export function encodeBatch(featurizer: Featurizer, payloads: readonly Payload[]): Float32Array {
  const out = new Float32Array(payloads.length * featurizer.dim);
  payloads.forEach((p, i) => featurizer.encodeInto(p, out, i * featurizer.dim));
  return out;
}
