/**
 * Toxic language: obscenity's English dataset (slurs, sexual and abusive terms) with its recommended
 * transformers (leetspeak, Unicode look-alikes, repeated letters, separators), plus an operator blocklist of
 * words or phrases matched with the same transformers, whole-word.
 * - `blocklisted_phrase`: any operator blocklist match (threshold 1);
 * - `toxic_language`: at least `minMatches` distinct obscenity matches (non-overlapping spans) AND at least
 *   `minPer100Words` of them per 100 words. Measured on the SpamAssassin corpus (first 4,000 chars; the default scans 2,000): any single
 *   match flags 8.7% of ham (mailing lists swear, and quote e-mail addresses like "bitbitch@…"); ≥ 2 matches
 *   3.3%; ≥ 2 matches at ≥ 2 per 100 words 0.48% of ham and 1.7% of spam. Tay-style texts are short and dense.
 * `labels` (optional) restricts the check to records carrying those labels — the labels a Tay-style attack
 * would try to teach toxic text as (e.g. "acceptable"/"ham"); records of other labels pass. `abuseLabels` (set
 * chain-wide from ABUSE_LABELS) is the same idea from the other side: a record labelled with an abuse class says
 * the content is bad, so it passes however abusive the text (issue 10: honest "this is spam" reports of a
 * profane campaign were quarantined and their reporters lost trust).
 *
 * Cost. obscenity's `getAllMatches` (whitelist pass, per-character transformer pipeline, 119 expressions) costs
 * ~310 µs per SpamAssassin mail. Most texts are decided without it: an upper bound on its span count (the distinct
 * end positions of term matches in the same transformed text, whitelist ignored, one pass of a lazily built DFA,
 * filters/term-automaton.ts) that is below the thresholds means no `toxic_language` reason, exactly; otherwise
 * `getAllMatches` decides as before. The transform and the DFA are each a few ns per character whatever the text:
 * a record of 20,000 fresh tokens takes ~360 µs, ~13× the median mail's ~28 µs (its length is 16×); the old bound,
 * one alternation and then one regular expression per term, took ~1,700 µs (npm run bench:screens, 2 cores).
 * Same verdicts as `{ reference: true }`
 * (the old path; test/filters/content.test.ts and bench/screen.ts compare them).
 */
import {
  RegExpMatcher,
  SyntaxKind,
  assignIncrementingIds,
  englishDataset,
  englishRecommendedTransformers,
  parseRawPattern,
  type MatchPayload,
  type Node,
  type ParsedPattern,
  type TransformerContainer,
} from 'obscenity';
import type { RawMessage, TrainingRecord } from '../core/record';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';
import { deobfuscate } from './deobfuscate';
import { TermAutomaton } from './term-automaton';

export interface ToxicitySettings {
  readonly minMatches: number;
  /** …and at least this many matches per 100 words (long informal mails swear occasionally; floods are dense). */
  readonly minPer100Words: number;
  readonly blocklist: readonly string[];
  /** Check only records with these labels; undefined = all labels. */
  readonly labels?: readonly number[];
  /**
   * Classes whose label says "this content is bad" (e.g. spam = 1): such a record does not teach the model its
   * abuse as acceptable, so it passes (an honest report of an abusive campaign). Undefined or empty: none.
   */
  readonly abuseLabels?: readonly number[];
  /** Only the first this many characters are scanned (bounds the cost of long texts). */
  readonly maxChars: number;
}


/**
 * An operator phrase as an obscenity pattern, whole-word (`|…|`). The blacklist transformers drop
 * non-letters from the input before matching, so they are dropped from the phrase too (which also removes
 * obscenity's special characters `[ ] ? | \`); digits are resolved as leetspeak on input, so "1488" cannot match.
 */
export function blocklistPattern(phrase: string): string | undefined {
  const p = phrase.toLowerCase().replace(/[^\p{L}\s]/gu, '').replace(/\s+/g, ' ').trim();
  return p.length > 0 ? `|${p}|` : undefined;
}

/** Distinct matched spans (obscenity may report overlapping terms for one word, e.g. "sh1t"). */
function countSpans(matches: readonly MatchPayload[]): number {
  const sorted = [...matches].sort((a, b) => a.startIndex - b.startIndex);
  let n = 0;
  let end = -1;
  for (const m of sorted) {
    if (m.startIndex > end) n += 1;
    end = Math.max(end, m.endIndex);
  }
  return n;
}

const PUNCT = /[()[\]{}<>"“”‘’«»!?.,;:*_~^`]/g;

function countWords(t: string): number {
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

let sharedMatcher: RegExpMatcher | undefined;
function englishMatcher(): RegExpMatcher {
  sharedMatcher ??= new RegExpMatcher({ ...englishDataset.build(), ...englishRecommendedTransformers });
  return sharedMatcher;
}

/**
 * The blacklist transformers as one function from text to transformed text, exactly as `RegExpMatcher` computes
 * it (same code points in, same string out), but without the per-character index map, iterator objects and
 * string concatenation: the leading stateless transformers (confusables, leetspeak, lower case) are composed
 * once per code point and cached; the stateful ones that follow (collapse duplicates) run per character, each
 * only on characters the earlier ones kept, as `TransformerSet.applyTo` does.
 */
export function compileTransformers(transformers: readonly TransformerContainer[]): (input: string) => string {
  const into = compileTransformersInto(transformers);
  return (input: string): string => {
    const { units, length } = into(input);
    let s = '';
    for (let j = 0; j < length; j += 8192) s += String.fromCharCode.apply(null, units.subarray(j, Math.min(length, j + 8192)) as unknown as number[]);
    return s;
  };
}

/** The fields of obscenity's CollapseDuplicatesTransformer (not exported) that define its behaviour. */
interface CollapseShape {
  defaultThreshold: number;
  customThresholds: Map<number, number>;
}

/**
 * `compileTransformers` without building the string: the transformed UTF-16 code units in a buffer reused across
 * calls (valid until the next call), for scanning with a `TermAutomaton`.
 */
export function compileTransformersInto(transformers: readonly TransformerContainer[]): (input: string) => { units: Uint16Array; length: number } {
  let k = 0;
  while (k < transformers.length && !('factory' in transformers[k])) k++;
  const simple = transformers.slice(0, k).map((t) => ('transform' in t ? t.transform : () => undefined));
  const rest = transformers.slice(k);
  const viaSimple = (c: number): number => {
    let v: number | undefined = c;
    for (let i = 0; i < simple.length && v !== undefined; i++) v = simple[i](v);
    return v === undefined ? -1 : v;
  };
  const bmp = new Int32Array(0x10000).fill(-2); // -2: not computed yet, -1: dropped
  const astral = new Map<number, number>();
  let buf = new Uint16Array(4096);
  // obscenity's collapse-duplicates stage (the English preset's only stateful one), recognised by shape so its
  // thresholds can be read once into a table; any other stateful stage runs through its own transform().
  const probe = rest.length === 1 && 'factory' in rest[0] ? (rest[0].factory() as unknown as Partial<CollapseShape>) : undefined;
  const isCollapse = probe?.constructor?.name === 'CollapseDuplicatesTransformer' && typeof probe.defaultThreshold === 'number' && probe.customThresholds instanceof Map;
  const collapseDefault = isCollapse ? (probe.defaultThreshold as number) : 0;
  const collapseMap = isCollapse ? (probe.customThresholds as Map<number, number>) : undefined;
  const collapse = collapseMap ? new Float64Array(0x10000).fill(collapseDefault) : undefined;
  if (collapse && collapseMap) {
    for (const [ch, t] of collapseMap) if (ch < 0x10000) collapse[ch] = t;
  }
  return (input: string) => {
    if (buf.length < 2 * input.length) buf = new Uint16Array(2 * input.length);
    const stages = rest.map((t) => ('factory' in t ? t.factory() : t));
    const length = collapse
      ? transformCollapsing(input, buf, bmp, collapse, (c) => (c < 0x10000 ? viaSimple(c) : cachedAstral(c)), (v) => collapseMap?.get(v) ?? collapseDefault)
      : transformGeneric(input, buf, bmp, stages, viaSimple, cachedAstral);
    return { units: buf, length };
  };
  function cachedAstral(c: number): number {
    let v = astral.get(c);
    if (v === undefined) astral.set(c, (v = viaSimple(c)));
    return v;
  }
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
 * collapse-duplicates stage inlined from `thresholds` (CollapseDuplicatesTransformer.transform: a run of one
 * character keeps its first `threshold` copies). A plain function of typed arrays: ~3 ns per character.
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

const SPECIAL = new Set(['[', '.', '*', '+', '?', '^', '$', '{', '}', '(', ')', '|', '\\', ']'].map((c) => c.charCodeAt(0)));
function nodeSource(node: Node): string {
  switch (node.kind) {
    case SyntaxKind.Literal:
      return node.chars.map((c) => (SPECIAL.has(c) ? '\\' : '') + String.fromCodePoint(c)).join('');
    case SyntaxKind.Optional:
      return `(?:${nodeSource(node.childNode)})?`;
    case SyntaxKind.Wildcard:
      return '.';
  }
}
/** The regular expression `RegExpMatcher` compiles for a pattern (its `compilePatternToRegExp`, not exported). */
export function patternSource(p: ParsedPattern): string {
  return (p.requireWordBoundaryAtStart ? '\\b' : '') + p.nodes.map(nodeSource).join('') + (p.requireWordBoundaryAtEnd ? '\\b' : '');
}

/**
 * A cheap upper bound on the number of distinct spans `getAllMatches` can report, for deciding most texts without
 * it: the distinct end positions of term matches over the same transformed text (filters/term-automaton.ts says
 * why that bounds the span count), one pass of a lazily built DFA — linear in the text, a few ns per character.
 */
class MatchBound {
  private readonly transform: (input: string) => { units: Uint16Array; length: number };
  private readonly automaton: TermAutomaton;

  constructor(patterns: readonly ParsedPattern[], transformers: readonly TransformerContainer[]) {
    this.transform = compileTransformersInto(transformers);
    this.automaton = new TermAutomaton(patterns);
  }

  /** Match ends in `text`, counting stops once `enough(count)` holds. */
  count(text: string, enough: (n: number) => boolean): number {
    const { units, length } = this.transform(text);
    return this.automaton.countEnds(units, length, enough);
  }
}

let sharedBound: MatchBound | undefined;
function englishBound(): MatchBound {
  sharedBound ??= new MatchBound(
    englishDataset.build().blacklistedTerms.map((t) => t.pattern),
    englishRecommendedTransformers.blacklistMatcherTransformers ?? [],
  );
  return sharedBound;
}

export interface ToxicityOptions {
  /** Always run obscenity's matcher (no upper-bound shortcut): the reference the fast path must agree with. */
  readonly reference?: boolean;
}

export class ToxicityDetector implements Detector {
  readonly name = 'toxicity';
  readonly scope = 'record' as const;
  private readonly english = englishMatcher();
  private readonly bound?: MatchBound;
  private readonly operator?: RegExpMatcher;
  private readonly labels?: ReadonlySet<number>;

  constructor(
    readonly settings: ToxicitySettings,
    options: ToxicityOptions = {},
  ) {
    const patterns = settings.blocklist.map(blocklistPattern).filter((p): p is string => p !== undefined);
    if (patterns.length > 0) {
      this.operator = new RegExpMatcher({
        blacklistedTerms: assignIncrementingIds(patterns.map(parseRawPattern)),
        ...englishRecommendedTransformers,
      });
    }
    if (settings.labels) this.labels = new Set(settings.labels);
    if (!options.reference) this.bound = englishBound();
  }

  /** The scanned text: the first maxChars characters, spaced and masked letters undone (filters/deobfuscate.ts). */
  private prefix(text: string): string {
    const t = text.length > this.settings.maxChars ? text.slice(0, this.settings.maxChars) : text;
    return deobfuscate(t, (word) => this.english.hasMatch(word));
  }

  /** Distinct obscenity matches and operator blocklist matches in a text (always obscenity's full matcher). */
  score(text: string): { toxic: number; blocked: number; words: number } {
    const t = this.prefix(text);
    return { toxic: countSpans(this.english.getAllMatches(t)), blocked: this.blocked(t), words: countWords(t) };
  }

  private blocked(t: string): number {
    // Punctuation next to a phrase defeats obscenity's whole-word check ("burn the (witches)!"): blank it out
    // (only punctuation that is not leetspeak, e.g. "@" and "$" stay).
    return this.operator ? countSpans(this.operator.getAllMatches(t.replace(PUNCT, ' '))) : 0;
  }

  private toxicEnough(toxic: number, words: number): boolean {
    return toxic >= this.settings.minMatches && (100 * toxic) / Math.max(1, words) >= this.settings.minPer100Words;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    if (!record.text) return ACCEPT;
    if (this.labels && !this.labels.has(record.label)) return ACCEPT;
    if (this.settings.abuseLabels?.includes(record.label)) return ACCEPT;
    const t = this.prefix(record.text);
    const words = countWords(t);
    const blocked = this.blocked(t);
    // `toxicEnough` only grows with the count and distinct spans ≤ matches ≤ raw term matches, so a raw count
    // that is not enough decides the verdict (no toxic_language reason) without obscenity's matcher.
    const decided = this.bound !== undefined && !this.toxicEnough(this.bound.count(t, (n) => this.toxicEnough(n, words)), words);
    const toxic = decided ? 0 : countSpans(this.english.getAllMatches(t));
    const density = (100 * toxic) / Math.max(1, words);
    const reasons: Reason[] = [];
    if (blocked >= 1) {
      reasons.push({
        stage: this.name,
        code: 'blocklisted_phrase',
        message: `text contains ${blocked} phrase(s) from the operator blocklist`,
        score: blocked,
        threshold: 1,
      });
    }
    if (!decided && this.toxicEnough(toxic, words)) {
      reasons.push({
        stage: this.name,
        code: 'toxic_language',
        message: `text contains ${toxic} abusive or obscene term(s) in ${words} words (${density.toFixed(1)} per 100; leetspeak and look-alikes resolved); quarantined from ${this.settings.minMatches} terms at ${this.settings.minPer100Words} per 100 words`,
        score: toxic,
        threshold: this.settings.minMatches,
      });
    }
    return reasons.length > 0 ? { kind: 'quarantine', reasons } : ACCEPT;
  }
}
