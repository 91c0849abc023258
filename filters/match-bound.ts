/**
 * The toxicity screen's cheap upper bound on the number of distinct spans obscenity's `getAllMatches` can report:
 * the distinct end positions of term matches over the same transformed text (filters/term-automaton.ts says why
 * that bounds the span count), and the text's word count, in ONE loop over the text's UTF-16 code units.
 *
 * Why one loop: the two-pass form (transform into a buffer, then walk the DFA over it, then count words) touched
 * the text three times and a 2-byte-per-unit buffer twice, and its lazily built DFA still met ~40 new transitions
 * in each record of fresh random tokens (a subset-construction step of a few µs each). On such a 4,000-character
 * record it took ~45 µs in a warm loop, and the whole screen 115–185 µs in the red-team benchmark's single timing
 * per record, 4.5–6.2× the median honest record's whole chain (target ≤ 5×, issue 10). Here, per code unit: the
 * word-count step, one read of a table that composes the stateless transformers, the collapse-duplicates threshold
 * and the DFA class, the inlined collapse step, and one read of the complete DFA's transition table; no allocation
 * per text. ~20 µs warm on that record; the screen 42–63 µs in the red-team benchmark, 2.3–3.3× per seed.
 *
 * Exactness: the loop computes the same transformed units (filters/transform.ts, obscenity's semantics: a high
 * surrogate followed by a low one is one code point) and walks the same DFA as `compileTransformersInto` +
 * `TermAutomaton.countEnds`, so the count is that two-pass count, not an approximation of it
 * (test/filters/match-bound.test.ts compares them, and the screen's verdicts with `{ reference: true }`).
 * Transformer sets other than a run of stateless stages then obscenity's collapse-duplicates with small integer
 * thresholds take the two-pass form.
 *
 * The loop also leaves its transformed units, their original indices and the match ends in reused buffers
 * (`recorded`): when the bound does not decide, the exact count (filters/match-count.ts) starts from them instead
 * of transforming and walking the text again (three stores per unit; the bound's cost on the corpus unchanged
 * within the machine's noise).
 */
import type { ParsedPattern, TransformerContainer } from 'obscenity';
import { TermAutomaton } from './term-automaton';
import { compileTransformersInto, splitTransformers } from './transform';

const DROPPED = -1;
/** For code units up to 32: 1 unless space, tab, CR or LF (branch-free word counting). */
const WORD_UNIT = Uint8Array.from({ length: 33 }, (_, c) => (c === 32 || c === 10 || c === 13 || c === 9 ? 0 : 1));
/** Packed thresholds are 7 bits (bits 24–30 of a non-negative int32). */
const MAX_PACKED_THRESHOLD = 127;

/** Words as the toxicity screen counts them: runs of code units other than space, tab, CR and LF. */
export function countWords(t: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 13 || c === 9;
    if (!space && !inWord) n += 1;
    inWord = !space;
  }
  return n;
}

export class MatchBound {
  /** Words in the text of the last `count` call. */
  words = 0;
  /**
   * The fused loop's record of the last `count` call (undefined after the two-pass form): the transformed text's
   * UTF-16 units and each one's original index (RegExpMatcher.applyTransformers' map: the start of the code point
   * it comes from), and the distinct match ends, ascending — what filters/match-count.ts needs for the exact count,
   * so a text the bound does not decide is not transformed and walked twice.
   */
  recorded?: { units: Uint16Array; map: Int32Array; length: number; ends: Int32Array; nEnds: number };
  /** `recorded`'s one object, updated in place (no allocation per text). */
  private readonly record = { units: new Uint16Array(0), map: new Int32Array(0), length: 0, ends: new Int32Array(0), nEnds: 0 };
  private readonly automaton: TermAutomaton;
  /**
   * Per BMP input code unit, its image after every stage but collapse-duplicates: DROPPED; −v for an astral image
   * v; or threshold << 24 | v << 8 | DFA class of v (equal entries ⇔ equal images, which is what collapse compares).
   */
  private readonly packed?: Int32Array;
  private readonly viaSimple: (c: number) => number;
  private readonly thresholdOf: (v: number) => number;
  private readonly astral = new Map<number, number>();
  private readonly twoPass?: (input: string) => { units: Uint16Array; length: number };

  constructor(patterns: readonly ParsedPattern[], transformers: readonly TransformerContainer[]) {
    this.automaton = new TermAutomaton(patterns);
    this.automaton.complete();
    const { viaSimple, collapse } = splitTransformers(transformers);
    this.viaSimple = viaSimple;
    this.thresholdOf = (v) => (collapse ? (collapse.customThresholds.get(v) ?? collapse.defaultThreshold) : 0);
    const small = (t: number) => Number.isInteger(t) && t >= 0 && t <= MAX_PACKED_THRESHOLD;
    if (!collapse || !small(collapse.defaultThreshold) || ![...collapse.customThresholds.values()].every(small)) {
      this.twoPass = compileTransformersInto(transformers);
      return;
    }
    this.packed = new Int32Array(0x10000);
    for (let c = 0; c < 0x10000; c++) this.packed[c] = this.pack(viaSimple(c));
  }

  private pack(v: number): number {
    if (v < 0) return DROPPED;
    if (v >= 0x10000) return -v;
    return (this.thresholdOf(v) << 24) | (v << 8) | this.automaton.classOf[v];
  }

  /** The packed image of an astral input code point (cached: obscenity's stages are pure functions). */
  private astralImage(cp: number): number {
    let p = this.astral.get(cp);
    if (p === undefined) this.astral.set(cp, (p = this.pack(this.viaSimple(cp))));
    return p;
  }

  /** Whether `count` runs the fused loop (false: the two-pass form, for other transformer sets). */
  get fused(): boolean {
    return this.packed !== undefined;
  }

  /** Distinct match end positions in `text` after the transformers; sets `words`. */
  count(text: string): number {
    const packed = this.packed;
    if (!packed) return this.countTwoPass(text);
    const automaton = this.automaton;
    automaton.begin();
    const classOf = automaton.classOf;
    let trans = automaton.table();
    const len = text.length;
    const record = this.record;
    if (record.units.length < 2 * len) {
      record.units = new Uint16Array(2 * len);
      record.map = new Int32Array(2 * len);
      record.ends = new Int32Array(2 * len + 1);
    }
    const units = record.units;
    const map = record.map;
    const ends = record.ends;
    let words = 0;
    let inWord = 0;
    let row = 0;
    let pos = 0; // index of the next transformed code unit
    let count = 0;
    let lastEnd = -1;
    let last = DROPPED; // collapse-duplicates: the last kept image (packed) and copies still allowed
    let remaining = -1;
    for (let i = 0; i < len; ) {
      const at = i;
      const c = text.charCodeAt(i++);
      const word = c > 32 ? 1 : WORD_UNIT[c];
      words += word & ~inWord;
      inWord = word;
      let p: number;
      if (c < 0xd800 || c > 0xdbff || i >= len) p = packed[c];
      else {
        const d = text.charCodeAt(i);
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++; // a low surrogate is not a space: the word goes on
          p = this.astralImage((c - 0xd800) * 0x400 + (d - 0xdc00) + 0x10000);
        } else p = packed[c];
      }
      if (p === DROPPED) continue;
      if (p === last) {
        if (remaining-- <= 0) continue;
      } else {
        const threshold = p >= 0 ? p >>> 24 : this.thresholdOf(-p);
        remaining = threshold - 1;
        last = p;
        if (!(threshold > 0)) continue;
      }
      let k: number;
      if (p >= 0) {
        k = p & 255;
        units[pos] = (p >> 8) & 0xffff;
      } else {
        // An astral image is two code units for the DFA: the high surrogate's step here, the low one's below.
        const w = -p - 0x10000;
        k = classOf[0xd800 + (w >> 10)];
        let t = trans[row + k];
        if (t < 0) {
          t = automaton.transition(row, k);
          trans = automaton.table();
        }
        row = t >> 2;
        if ((t & 1) !== 0 && pos - 1 > lastEnd) ends[count++] = lastEnd = pos - 1;
        if ((t & 2) !== 0 && pos > lastEnd) ends[count++] = lastEnd = pos;
        units[pos] = 0xd800 + (w >> 10);
        map[pos] = at;
        pos += 1;
        k = classOf[0xdc00 + (w & 0x3ff)];
        units[pos] = 0xdc00 + (w & 0x3ff);
      }
      map[pos] = at;
      let t = trans[row + k];
      if (t < 0) {
        t = automaton.transition(row, k); // only when the DFA could not be completed
        trans = automaton.table();
      }
      row = t >> 2;
      if ((t & 3) !== 0) {
        if ((t & 1) !== 0 && pos - 1 > lastEnd) ends[count++] = lastEnd = pos - 1;
        if ((t & 2) !== 0 && pos > lastEnd) ends[count++] = lastEnd = pos;
      }
      pos += 1;
    }
    // End of text: a `\b` after the last unit holds when that unit is a word character.
    if (automaton.endsAtEnd(row) && pos - 1 > lastEnd) ends[count++] = pos - 1;
    this.words = words;
    record.length = pos;
    record.nEnds = count;
    this.recorded = record;
    return count;
  }

  private countTwoPass(text: string): number {
    this.recorded = undefined;
    const { units, length } = (this.twoPass as NonNullable<MatchBound['twoPass']>)(text);
    this.words = countWords(text);
    return this.automaton.countEnds(units, length, () => false);
  }
}
