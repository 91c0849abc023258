/**
 * obscenity's blacklist transformers (confusables, leetspeak, lower case, collapse duplicates) compiled to tables,
 * for the toxicity screen's upper bound (filters/match-bound.ts). Same code points in, same text out as
 * `RegExpMatcher`'s `TransformerSet.applyTo` (test/filters/content.test.ts compares them on the corpus), without
 * its per-character index map, iterator objects and string concatenation: the leading stateless transformers are
 * composed once per code point; the stateful ones that follow run per character, each only on characters the
 * earlier ones kept. `walker` is the same transform with obscenity's index map and a TermAutomaton walk in one loop,
 * for the toxicity screen's exact count (filters/match-count.ts).
 */
import type { TransformerContainer } from 'obscenity';
import type { TermAutomaton } from './term-automaton';

/** The fields of obscenity's CollapseDuplicatesTransformer (not exported) that define its behaviour. */
interface CollapseShape {
  defaultThreshold: number;
  customThresholds: Map<number, number>;
}

export interface SplitTransformers {
  /** The leading stateless stages composed: a code point's image, or -1 when one of them drops it. */
  readonly viaSimple: (c: number) => number;
  /** The stateful stages after them, in order. */
  readonly rest: readonly TransformerContainer[];
  /**
   * When `rest` is exactly obscenity's collapse-duplicates stage (the English preset's only stateful one,
   * recognised by shape): its thresholds, read once so the stage can be inlined (a run of one character keeps its
   * first `threshold` copies; CollapseDuplicatesTransformer.transform).
   */
  readonly collapse?: { readonly defaultThreshold: number; readonly customThresholds: ReadonlyMap<number, number> };
}

export function splitTransformers(transformers: readonly TransformerContainer[]): SplitTransformers {
  let k = 0;
  while (k < transformers.length && !('factory' in transformers[k])) k++;
  const simple = transformers.slice(0, k).map((t) => ('transform' in t ? t.transform : () => undefined));
  const rest = transformers.slice(k);
  const viaSimple = (c: number): number => {
    let v: number | undefined = c;
    for (let i = 0; i < simple.length && v !== undefined; i++) v = simple[i](v);
    return v === undefined ? -1 : v;
  };
  const probe = rest.length === 1 && 'factory' in rest[0] ? (rest[0].factory() as unknown as Partial<CollapseShape>) : undefined;
  const isCollapse = probe?.constructor?.name === 'CollapseDuplicatesTransformer' && typeof probe.defaultThreshold === 'number' && probe.customThresholds instanceof Map;
  const collapse = isCollapse ? { defaultThreshold: probe.defaultThreshold as number, customThresholds: probe.customThresholds as Map<number, number> } : undefined;
  return { viaSimple, rest, ...(collapse ? { collapse } : {}) };
}

/** The blacklist transformers as one function from text to transformed text, exactly as `RegExpMatcher` computes it. */
export function compileTransformers(transformers: readonly TransformerContainer[]): (input: string) => string {
  const into = compileTransformersInto(transformers);
  return (input: string): string => {
    const { units, length } = into(input);
    let s = '';
    for (let j = 0; j < length; j += 8192) s += String.fromCharCode.apply(null, units.subarray(j, Math.min(length, j + 8192)) as unknown as number[]);
    return s;
  };
}

/**
 * `compileTransformers` without building the string: the transformed UTF-16 code units in a buffer reused across
 * calls (valid until the next call), for scanning with a `TermAutomaton` (the two-pass form of the bound; the
 * screen itself uses the fused loop of filters/match-bound.ts when the stages allow it).
 */
export function compileTransformersInto(transformers: readonly TransformerContainer[]): (input: string) => { units: Uint16Array; length: number } {
  const { viaSimple, rest, collapse: shape } = splitTransformers(transformers);
  const bmp = new Int32Array(0x10000).fill(-2); // -2: not computed yet, -1: dropped
  const astral = new Map<number, number>();
  let buf = new Uint16Array(4096);
  const collapse = shape ? new Float64Array(0x10000).fill(shape.defaultThreshold) : undefined;
  if (collapse && shape) {
    for (const [ch, t] of shape.customThresholds) if (ch < 0x10000) collapse[ch] = t;
  }
  const cachedAstral = (c: number): number => {
    let v = astral.get(c);
    if (v === undefined) astral.set(c, (v = viaSimple(c)));
    return v;
  };
  return (input: string) => {
    if (buf.length < 2 * input.length) buf = new Uint16Array(2 * input.length);
    const length =
      collapse && shape
        ? transformCollapsing(input, buf, bmp, collapse, (c) => (c < 0x10000 ? viaSimple(c) : cachedAstral(c)), (v) => shape.customThresholds.get(v) ?? shape.defaultThreshold)
        : transformGeneric(input, buf, bmp, rest.map((t) => ('factory' in t ? t.factory() : t)), viaSimple, cachedAstral);
    return { units: buf, length };
  };
}

/** Append code point `w` to `out` at `n` as UTF-16; the new length. */
function put(out: Uint16Array, n: number, w: number): number {
  if (w < 0x10000) {
    out[n] = w;
    return n + 1;
  }
  w -= 0x10000;
  out[n] = 0xd800 + (w >> 10);
  out[n + 1] = 0xdc00 + (w & 0x3ff);
  return n + 2;
}

/**
 * The stateless stages from `table` (BMP, -2 = not computed yet, -1 = dropped; `slow` for the rest), then the
 * collapse-duplicates stage inlined from `thresholds`.
 */
function transformCollapsing(input: string, out: Uint16Array, table: Int32Array, thresholds: Float64Array, slow: (c: number) => number, astralThreshold: (v: number) => number): number {
  const len = input.length;
  let n = 0;
  let last = -1;
  let remaining = -1;
  for (let i = 0; i < len; ) {
    let c = input.charCodeAt(i++);
    // Code points as obscenity's CharacterIterator reads them: a high surrogate followed by a low one is one.
    if (c >= 0xd800 && c <= 0xdbff && i < len) {
      const d = input.charCodeAt(i);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        c = (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000;
      }
    }
    let v = c < 0x10000 ? table[c] : slow(c);
    if (v === -2) v = table[c] = slow(c);
    if (v < 0) continue;
    if (v === last) {
      if (remaining-- <= 0) continue;
    } else {
      const threshold = v < 0x10000 ? thresholds[v] : astralThreshold(v);
      remaining = threshold - 1;
      last = v;
      if (!(threshold > 0)) continue;
    }
    n = put(out, n, v);
  }
  return n;
}

/** The same for any stateful stages, each called through its transform(). */
function transformGeneric(input: string, out: Uint16Array, table: Int32Array, stages: readonly { transform(c: number): number | undefined }[], viaSimple: (c: number) => number, astral: (c: number) => number): number {
  const len = input.length;
  let n = 0;
  for (let i = 0; i < len; ) {
    let c = input.charCodeAt(i++);
    if (c >= 0xd800 && c <= 0xdbff && i < len) {
      const d = input.charCodeAt(i);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        c = (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000;
      }
    }
    let v = c < 0x10000 ? table[c] : astral(c);
    if (v === -2) v = table[c] = viaSimple(c);
    if (v < 0) continue;
    let w: number | undefined = v;
    for (let j = 0; j < stages.length && w !== undefined; j++) w = stages[j].transform(w);
    if (w !== undefined) n = put(out, n, w);
  }
  return n;
}

/** A transformed text with its map and match ends, filled by a walker (the same fields as `Recorded`). */
export interface Walk {
  units: Uint16Array;
  map: Int32Array;
  length: number;
  ends: Int32Array;
  nEnds: number;
}

/**
 * `applyTransformers` for a transformer set, in one loop with the walk of `automaton` over its output: the
 * transformed UTF-16 units, each one's original index (the start of the code point it comes from) and the
 * distinct match ends. The leading stateless stages are composed once per BMP code point; obscenity's
 * collapse-duplicates stage, when it is the only stage after them, is inlined from its thresholds (as in
 * filters/transform.ts); any other stages are called per code point on fresh instances (as `resetAll` leaves them).
 */
export function walker(transformers: readonly TransformerContainer[], automaton: TermAutomaton): (input: string, out: Walk) => void {
  const { viaSimple, rest, collapse: shape } = splitTransformers(transformers);
  const bmp = new Int32Array(0x10000);
  for (let c = 0; c < 0x10000; c++) bmp[c] = viaSimple(c); // -1: dropped
  const astral = new Map<number, number>();
  const astralImage = (c: number): number => {
    let v = astral.get(c);
    if (v === undefined) astral.set(c, (v = viaSimple(c)));
    return v;
  };
  // Thresholds as int32 so the run counter stays a small integer: an unbounded threshold (the whitelist's
  // Infinity, "never collapse") becomes 2^31 − 1, more copies than any text has; a fractional one keeps
  // ⌈threshold⌉ copies in CollapseDuplicatesTransformer (remaining = threshold − 1, kept while remaining-- > 0).
  const asInt = (t: number): number => (t > 0x7ffffffe ? 0x7fffffff : t > 0 ? Math.ceil(t) : 0);
  const thresholds = new Int32Array(0x10000).fill(asInt(shape?.defaultThreshold ?? 0));
  if (shape) for (const [ch, t] of shape.customThresholds) if (ch < 0x10000) thresholds[ch] = asInt(t);
  const astralThreshold = (v: number): number => asInt(shape?.customThresholds.get(v) ?? shape?.defaultThreshold ?? 0);
  const classOf = automaton.classOf;
  return (input, out) => {
    const stages = shape ? [] : (rest.map((t) => ('factory' in t ? t.factory() : t)) as { transform(c: number): number | undefined }[]);
    const len = input.length;
    if (out.units.length < 2 * len) {
      out.units = new Uint16Array(2 * len);
      out.map = new Int32Array(2 * len);
      out.ends = new Int32Array(2 * len + 1);
    }
    const { units, map, ends } = out;
    automaton.begin();
    let trans = automaton.table();
    let row = 0;
    let nEnds = 0;
    let lastEnd = -1;
    let n = 0;
    let last = -1;
    let remaining = -1;
    for (let i = 0; i < len; ) {
      const at = i;
      let c = input.charCodeAt(i++);
      if (c >= 0xd800 && c <= 0xdbff && i < len) {
        const d = input.charCodeAt(i);
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++;
          c = (c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000;
        }
      }
      let w: number | undefined = c < 0x10000 ? bmp[c] : astralImage(c);
      if (w < 0) continue;
      if (shape) {
        // CollapseDuplicatesTransformer.transform
        if (w === last) {
          if (remaining-- <= 0) continue;
        } else {
          const threshold = w < 0x10000 ? thresholds[w] : astralThreshold(w);
          remaining = threshold - 1;
          last = w;
          if (!(threshold > 0)) continue;
        }
      } else {
        for (let j = 0; j < stages.length && w !== undefined; j++) w = stages[j].transform(w);
        if (w === undefined) continue;
      }
      if (w < 0x10000) {
        units[n] = w;
        map[n] = at;
        let t = trans[row + classOf[w]];
        if (t < 0) {
          t = automaton.transition(row, classOf[w]);
          trans = automaton.table();
        }
        row = t >> 2;
        if ((t & 1) !== 0 && n - 1 > lastEnd) ends[nEnds++] = lastEnd = n - 1;
        if ((t & 2) !== 0 && n > lastEnd) ends[nEnds++] = lastEnd = n;
        n++;
        continue;
      }
      // An astral image: two units, two steps.
      const hi = 0xd800 + ((w - 0x10000) >> 10);
      const lo = 0xdc00 + ((w - 0x10000) & 0x3ff);
      for (const u of [hi, lo]) {
        units[n] = u;
        map[n] = at;
        let t = trans[row + classOf[u]];
        if (t < 0) {
          t = automaton.transition(row, classOf[u]);
          trans = automaton.table();
        }
        row = t >> 2;
        if ((t & 1) !== 0 && n - 1 > lastEnd) ends[nEnds++] = lastEnd = n - 1;
        if ((t & 2) !== 0 && n > lastEnd) ends[nEnds++] = lastEnd = n;
        n++;
      }
    }
    if (automaton.endsAtEnd(row) && n - 1 > lastEnd) ends[nEnds++] = n - 1;
    out.length = n;
    out.nEnds = nEnds;
  };
}
