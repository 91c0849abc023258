/**
 * A text's windows as rows of the hashed-text featurizer, without building and re-tokenizing each window's text:
 * the text is tokenized and each token hashed once, and each window's row is built from its tokens' buckets. Row
 * k is what `hashedTextFeaturizer(dim).encodeSparse({ text: windows[k] })` gives for the k-th window of
 * `textWindows` (filters/witness.ts): the same tokens (a window's text is its tokens joined by spaces, and the
 * tokenizer gives them back unchanged), the same log1p counts, the same L2 normalisation.
 * Cost: one tokenization and one hash per token, then O(window) per window — ~10× cheaper than encoding each
 * window's text on a 20,000-character mail (the witness's parts rule scores every window).
 */
import { bucketCountsToRow, fnv1a, tokenize } from './featurize';

export interface SparseRow {
  readonly indices: number[];
  readonly values: number[];
}

/** Token windows of `tokens` tokens over the first `maxChars` characters, stepping by half a window; one for short texts. */
export function windowSpans(count: number, tokens: number): [number, number][] {
  if (count === 0) return [];
  if (count <= tokens) return [[0, count]];
  const step = Math.max(1, Math.floor(tokens / 2));
  const out: [number, number][] = [];
  for (let i = 0; ; i += step) {
    out.push([i, Math.min(count, i + tokens)]);
    if (i + tokens >= count) break;
  }
  return out;
}

export function hashedWindowRows(text: string, dim: number, tokens: number, maxChars: number): SparseRow[] {
  const words = tokenize(text.length > maxChars ? text.slice(0, maxChars) : text);
  const buckets = words.map((w) => fnv1a(w) % dim);
  return windowSpans(words.length, tokens).map(([from, to]) => {
    const counts = new Map<number, number>();
    for (let i = from; i < to; i++) counts.set(buckets[i], (counts.get(buckets[i]) ?? 0) + 1);
    return bucketCountsToRow(counts);
  });
}
