/**
 * Echo abuse: "repeat after me" and similar instructions that turn a model into a megaphone for whatever
 * follows (the Tay attack). Patterns are regular expressions (case-insensitive, Unicode) matched against text
 * normalised with NFKC, zero-width characters removed and whitespace collapsed, so "ｒｅｐｅａｔ after\u200bme"
 * still matches (the default patterns allow words to be run together for that reason). Defaults are deliberately precise: "say exactly", "copy this" and "repeat this" count only
 * when followed by a colon or a quote (normal mail says "I can't say exactly when" and "copy this file").
 * Verbatim echoes of other recent messages are the campaign stage's job (near-duplicates across sources).
 * With the default patterns a literal precheck (`DEFAULT_LITERALS`) skips normalising and matching texts that
 * cannot match (~13 µs instead of ~95 µs per SpamAssassin mail, same verdicts; `{ reference: true }` disables it).
 * When a literal does occur, the default patterns run without the `i` flag (the text is already lower-cased) and,
 * on ASCII text, without `u`: case-insensitive Unicode matching made a 4,000-character text full of "repeat …
 * after … exactly" cost ~600–900 µs (25× the median mail: a cheap denial of service for an attacker who has read
 * this file); without the flags, ~40–90 µs. Same matches: every default pattern is lower-case ASCII, and the
 * normalised text is NFKC-folded and lower-cased (NFKC maps "ſ" and the Kelvin sign, the two characters that
 * case-insensitive Unicode matching folds into ASCII letters, to "s" and "K"), which test/filters/echo.test.ts
 * checks against the reference path on generated text.
 * The label's direction counts (issue 10): only records that would teach the echoed content as acceptable are
 * held back; one labelled with an abuse class (`abuseLabels`, e.g. spam) says the content is bad and passes.
 */
import unhomoglyph from 'unhomoglyph';
import type { RawMessage, TrainingRecord } from '../core/record';
import { ACCEPT, type Detector, type Verdict } from './types';

export interface EchoSettings {
  readonly patterns: readonly string[];
  /** Matches (over all patterns) needed to quarantine. */
  readonly minMatches: number;
  /**
   * Classes whose label says "this content is bad" (e.g. spam = 1): such a record does not teach the model to
   * repeat its text, so it passes (an honest report of an echo campaign). Undefined or empty: every label.
   */
  readonly abuseLabels?: readonly number[];
}

const QUOTE = `\\s*[:"“”'‘’«»]`;
export const DEFAULT_ECHO_PATTERNS: readonly string[] = [
  String.raw`\brepeat\s*after\s*me\b`,
  String.raw`\bsay\s*after\s*me\b`,
  String.raw`\b(?:say|type|write|post|tweet)\s+(?:this\s+|it\s+|the\s+following\s+)?exactly` + QUOTE,
  String.raw`\bcopy\s+(?:this|the\s+following)(?:\s+(?:exactly|verbatim|word\s+for\s+word))?` + QUOTE,
  String.raw`\brepeat\s+(?:this|the\s+following)(?:\s+(?:back|exactly|verbatim|word\s+for\s+word))?` + QUOTE,
  String.raw`\brepeat\s+(?:this|it)\s+(?:back\s+to\s+me|verbatim|word\s+for\s+word)\b`,
];


const ZERO_WIDTH = /[\u00AD\u034F\u180E\u200B-\u200F\u2060-\u2064\uFEFF]/g;

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/**
 * A non-ASCII character that Unicode's confusables table (UTS #39, via `unhomoglyph`) maps to ASCII becomes that
 * ASCII prototype: Cyrillic "е" in "rеpeat" is an "e". Only non-ASCII characters are folded — the full skeleton
 * also maps ASCII to ASCII ("m" → "rn"), which would break the patterns, and ASCII needs no folding to match them.
 */
function foldConfusables(text: string): string {
  return text.replace(NON_ASCII, (c) => {
    const prototype = unhomoglyph(c);
    return ASCII.test(prototype) ? prototype : c;
  });
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/gu;

export function normaliseForMatching(text: string): string {
  // NFKC, confusables and the zero-width characters only concern non-ASCII text; most text is ASCII, and NFKC over
  // a long mail is the bulk of this screen's cost, so ASCII text skips them (NFKC of ASCII is the identity).
  const folded = ASCII.test(text) ? text : foldConfusables(text.normalize('NFKC').replace(ZERO_WIDTH, ''));
  return folded.replace(/\s+/g, ' ').toLowerCase();
}

/**
 * For each default pattern (same order), literals that every match of it contains: a pattern runs only if all of
 * its literals occur, and a text in which no pattern can run is accepted without normalising it. Matching is
 * case-insensitive Unicode (`iu`) like the patterns, so on non-ASCII text the check is a regular expression with
 * those flags over the normalised text; on ASCII text (most mail) normalising only lower-cases and collapses
 * whitespace, neither of which creates or breaks a letter-only literal, so `includes` over the lower-cased raw
 * text decides before normalising anything. Configured (non-default) patterns always take the full path.
 */
const DEFAULT_LITERALS: readonly (readonly string[])[] = [
  ['repeat', 'after'], // \brepeat\s*after\s*me\b
  ['say', 'after'], // \bsay\s*after\s*me\b
  ['exactly'], // \b(?:say|type|write|post|tweet)\s+…exactly[:"…]
  ['copy'], // \bcopy\s+(?:this|the\s+following)…[:"…]
  ['repeat'], // \brepeat\s+(?:this|the\s+following)…[:"…]
  ['repeat'], // \brepeat\s+(?:this|it)\s+(?:back\s+to\s+me|…)\b
];

const isDefault = (patterns: readonly string[]) =>
  patterns.length === DEFAULT_ECHO_PATTERNS.length && patterns.every((p, i) => p === DEFAULT_ECHO_PATTERNS[i]);

export interface EchoOptions {
  /** Always normalise and run every pattern (no literal precheck): the reference the fast path must agree with. */
  readonly reference?: boolean;
}

export class EchoDetector implements Detector {
  readonly name = 'echo';
  readonly scope = 'record' as const;
  private readonly regexes: RegExp[];
  /** The default patterns without `i` (lower-cased text), for ASCII text (`g`) and normalised text (`gu`). */
  private readonly lowered?: { readonly ascii: RegExp[]; readonly unicode: RegExp[] };
  /** Per pattern, literals every match contains; only for the default patterns (others always run). */
  private readonly literals?: readonly (readonly { text: string; re: RegExp }[])[];

  constructor(
    readonly settings: EchoSettings,
    options: EchoOptions = {},
  ) {
    this.regexes = settings.patterns.map((p) => new RegExp(p, 'giu'));
    if (!options.reference && isDefault(settings.patterns)) {
      this.literals = DEFAULT_LITERALS.map((ls) => ls.map((l) => ({ text: l, re: new RegExp(l, 'iu') })));
      this.lowered = { ascii: settings.patterns.map((p) => new RegExp(p, 'g')), unicode: settings.patterns.map((p) => new RegExp(p, 'gu')) };
    }
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    if (!record.text) return ACCEPT;
    if (this.settings.abuseLabels?.includes(record.label)) return ACCEPT;
    let text: string;
    let run: boolean[] | undefined; // which patterns can match; undefined = all
    let regexes = this.regexes;
    if (this.literals && this.settings.minMatches >= 1) {
      const ascii = ASCII.test(record.text);
      const lower = ascii ? record.text.toLowerCase() : '';
      const seen = new Map<string, boolean>();
      const has = (l: { text: string; re: RegExp }, t: string) => {
        let v = seen.get(l.text);
        if (v === undefined) seen.set(l.text, (v = ascii ? lower.includes(l.text) : l.re.test(t)));
        return v;
      };
      if (ascii) {
        run = this.literals.map((ls) => ls.every((l) => has(l, lower)));
        if (!run.includes(true)) return ACCEPT;
        text = lower.replace(/\s+/g, ' ');
        regexes = this.lowered?.ascii ?? regexes;
      } else {
        text = normaliseForMatching(record.text);
        run = this.literals.map((ls) => ls.every((l) => has(l, text)));
        if (!run.includes(true)) return ACCEPT;
        regexes = this.lowered?.unicode ?? regexes;
      }
    } else {
      text = normaliseForMatching(record.text);
    }
    let matches = 0;
    const hits: string[] = [];
    regexes.forEach((re, i) => {
      if (run && !run[i]) return;
      re.lastIndex = 0;
      for (const m of text.matchAll(re)) {
        matches += 1;
        if (hits.length < 3) hits.push(m[0].trim());
      }
    });
    if (matches < this.settings.minMatches) return ACCEPT;
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'echo_instruction',
          message: `text tells the model to repeat something verbatim (${hits.map((h) => JSON.stringify(h)).join(', ')}); ${matches} match(es), threshold ${this.settings.minMatches}`,
          score: matches,
          threshold: this.settings.minMatches,
        },
      ],
    };
  }
}
