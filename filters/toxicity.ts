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
 * end positions of term matches in the same transformed text, whitelist ignored, filters/term-automaton.ts) that is
 * below the thresholds means no `toxic_language` reason, exactly; otherwise the exact count decides — obscenity's
 * span count computed only where a term matches, from the bound's record of the transformed text and its match ends
 * (filters/match-count.ts; `getAllMatches` over a 4,000-character flood of profanity and near-misses cost ~0.9–1.4
 * ms, 49–65× the median honest record's chain in bench:redteam's dos slow-path family). The
 * transformers, the walk of the DFA (built in full once per process) and the word count are one loop without
 * allocation (filters/match-bound.ts), ~5 ns per character whatever the text: ~16 µs for the median mail (1,269
 * chars) and ~150 µs for 20,000 characters of fresh tokens (npm run bench:screens, 2 cores; the transform into a
 * buffer then a lazily built DFA took ~28 and ~350 µs, the bound as one alternation then one regular expression per
 * term ~61 and ~1,700 µs). In the sidecar a text is cut to TEXT_READ_CHARS (4,000) at ingest: bench:redteam's dos
 * family measures this screen at 2.6–2.9× the median honest record's whole chain (4.7–4.9× before the fused loop;
 * target ≤ 5×, issue 10). A record the bound does not decide — a flood of profanity, near-misses and whitelisted
 * words — costs the exact count on top: 8–13× the median chain in bench:redteam's dos slow-path family (58–65× with
 * getAllMatches on the same run), 11–15× for whitelisted words with profanity just under the density (the
 * below-threshold setting; target ≤ 5×, not met yet). An operator blocklist takes the same two steps over the
 * text with punctuation blanked (its own bound and exact count; obscenity's matcher over every record had cost 133 µs
 * on the median mail and 2.9 ms on 20,000 characters, now 31 µs and 0.34 ms — npm run bench:screens, "with a
 * toxicity blocklist"). Same verdicts as `{ reference: true }` (the old path;
 * test/filters/content.test.ts, test/filters/match-bound.test.ts, test/filters/match-count.test.ts and
 * bench/screen.ts compare them).
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
} from 'obscenity';
import type { RawMessage, TrainingRecord } from '../core/record';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';
import { deobfuscate } from './deobfuscate';
import { MatchBound, countWords } from './match-bound';
import { MatchCount } from './match-count';

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
export function countSpans(matches: readonly MatchPayload[]): number {
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

let sharedMatcher: RegExpMatcher | undefined;
function englishMatcher(): RegExpMatcher {
  sharedMatcher ??= new RegExpMatcher({ ...englishDataset.build(), ...englishRecommendedTransformers });
  return sharedMatcher;
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

let sharedBound: MatchBound | undefined;
function englishBound(): MatchBound {
  sharedBound ??= new MatchBound(
    englishDataset.build().blacklistedTerms.map((t) => t.pattern),
    englishRecommendedTransformers.blacklistMatcherTransformers ?? [],
  );
  return sharedBound;
}

let sharedCount: MatchCount | undefined;
function englishCount(): MatchCount {
  const dataset = englishDataset.build();
  sharedCount ??= new MatchCount(
    dataset.blacklistedTerms.map((t) => t.pattern),
    dataset.whitelistedTerms ?? [],
    englishRecommendedTransformers.blacklistMatcherTransformers ?? [],
    englishRecommendedTransformers.whitelistMatcherTransformers ?? [],
  );
  return sharedCount;
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
  private readonly exact?: MatchCount;
  private readonly operator?: RegExpMatcher;
  /** The operator blocklist through the same bound and exact count as the English terms (absent in reference mode). */
  private readonly operatorBound?: MatchBound;
  private readonly operatorCount?: MatchCount;
  private readonly labels?: ReadonlySet<number>;

  constructor(
    readonly settings: ToxicitySettings,
    options: ToxicityOptions = {},
  ) {
    const patterns = settings.blocklist.map(blocklistPattern).filter((p): p is string => p !== undefined);
    if (patterns.length > 0) {
      const terms = assignIncrementingIds(patterns.map(parseRawPattern));
      this.operator = new RegExpMatcher({ blacklistedTerms: terms, ...englishRecommendedTransformers });
      if (!options.reference) {
        const black = englishRecommendedTransformers.blacklistMatcherTransformers ?? [];
        const parsed = terms.map((t) => t.pattern);
        this.operatorBound = new MatchBound(parsed, black);
        this.operatorCount = new MatchCount(parsed, [], black, englishRecommendedTransformers.whitelistMatcherTransformers ?? []);
      }
    }
    if (settings.labels) this.labels = new Set(settings.labels);
    if (!options.reference) {
      this.bound = englishBound();
      this.exact = englishCount();
    }
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
    if (!this.operator) return 0;
    const u = t.replace(PUNCT, ' ');
    if (!this.operatorBound || !this.operatorCount) return countSpans(this.operator.getAllMatches(u));
    // No term match end (the bound is 0) means no match; otherwise the exact count, from the bound's record (the
    // header says what getAllMatches over every record cost).
    return this.operatorBound.count(u) === 0 ? 0 : this.operatorCount.count(u, this.operatorBound.recorded);
  }

  private toxicEnough(toxic: number, words: number): boolean {
    return toxic >= this.settings.minMatches && (100 * toxic) / Math.max(1, words) >= this.settings.minPer100Words;
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    if (!record.text) return ACCEPT;
    if (this.labels && !this.labels.has(record.label)) return ACCEPT;
    if (this.settings.abuseLabels?.includes(record.label)) return ACCEPT;
    const t = this.prefix(record.text);
    const blocked = this.blocked(t);
    // `toxicEnough` only grows with the count and distinct spans ≤ matches ≤ raw term matches, so a raw count
    // that is not enough decides the verdict (no toxic_language reason) without obscenity's matcher. The bound's
    // loop counts the words too (the same count as countWords).
    const bound = this.bound?.count(t);
    const words = this.bound ? this.bound.words : countWords(t);
    const decided = bound !== undefined && !this.toxicEnough(bound, words);
    const toxic = decided ? 0 : this.exact ? this.exact.count(t, this.bound?.recorded) : countSpans(this.english.getAllMatches(t));
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
