/**
 * Echo abuse: "repeat after me" and similar instructions that turn a model into a megaphone for whatever
 * follows (the Tay attack). Patterns are regular expressions (case-insensitive, Unicode) matched against text
 * normalised with NFKC, zero-width characters removed and whitespace collapsed, so "ｒｅｐｅａｔ after\u200bme"
 * still matches (the default patterns allow words to be run together for that reason). Defaults are deliberately precise: "say exactly", "copy this" and "repeat this" count only
 * when followed by a colon or a quote (normal mail says "I can't say exactly when" and "copy this file").
 * Verbatim echoes of other recent messages are the campaign stage's job (near-duplicates across sources).
 */
import type { RawMessage, TrainingRecord } from '../src/record';
import { ACCEPT, type Detector, type Verdict } from './types';

export interface EchoSettings {
  readonly patterns: readonly string[];
  /** Matches (over all patterns) needed to quarantine. */
  readonly minMatches: number;
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

export const DEFAULT_ECHO: EchoSettings = { patterns: DEFAULT_ECHO_PATTERNS, minMatches: 1 };

const ZERO_WIDTH = /[\u00AD\u034F\u180E\u200B-\u200F\u2060-\u2064\uFEFF]/g;

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

export function normaliseForMatching(text: string): string {
  // NFKC and the zero-width characters only concern non-ASCII text; most text is ASCII, and NFKC over a long
  // mail is the bulk of this screen's cost, so ASCII text skips it (NFKC of ASCII is the identity).
  const folded = ASCII.test(text) ? text : text.normalize('NFKC').replace(ZERO_WIDTH, '');
  return folded.replace(/\s+/g, ' ').toLowerCase();
}

export class EchoDetector implements Detector {
  readonly name = 'echo';
  readonly scope = 'record' as const;
  private readonly regexes: RegExp[];

  constructor(readonly settings: EchoSettings) {
    this.regexes = settings.patterns.map((p) => new RegExp(p, 'giu'));
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    if (!record.text) return ACCEPT;
    const text = normaliseForMatching(record.text);
    let matches = 0;
    const hits: string[] = [];
    for (const re of this.regexes) {
      re.lastIndex = 0;
      for (const m of text.matchAll(re)) {
        matches += 1;
        if (hits.length < 3) hits.push(m[0].trim());
      }
    }
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
