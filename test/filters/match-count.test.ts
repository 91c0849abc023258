import fc from 'fast-check';
import {
  RegExpMatcher,
  collapseDuplicatesTransformer,
  createSimpleTransformer,
  englishDataset,
  englishRecommendedTransformers,
  parseRawPattern,
  skipNonAlphabeticTransformer,
  toAsciiLowerCaseTransformer,
  type TransformerContainer,
} from 'obscenity';
import { MatchCount } from '../../filters/match-count';
import { MatchBound } from '../../filters/match-bound';
import { ToxicityDetector, countSpans } from '../../filters/toxicity';
import { DEFAULT_TOXICITY } from '../../filters/config';
import { loadSpamCorpus } from '../../src/data/spam';
import type { TrainingRecord } from '../../core/record';

// The toxicity screen's exact count (filters/match-count.ts) must be obscenity's: the distinct spans of
// RegExpMatcher.getAllMatches (whitelist applied), on every text — honest mail full of whitelisted words
// ("assess", "class", "Dickens") as much as floods of profanity and near-misses.

const dataset = englishDataset.build();
const patterns = dataset.blacklistedTerms.map((t) => t.pattern);
const whitelist = dataset.whitelistedTerms ?? [];
const black = englishRecommendedTransformers.blacklistMatcherTransformers ?? [];
const white = englishRecommendedTransformers.whitelistMatcherTransformers ?? [];

// Terms, near-misses, every whitelisted term and pieces of them, leetspeak, look-alikes, case, runs of spaces and
// letters (collapse), separators, surrogates.
const PIECES = [
  'fuck', 'f.ck', 'fk', 'fu', 'fuuuuck', 'fuk', 'ass', 'a$$', 'asss', 'bitch', 'b1tch', 'bich', 'sh1t', 'shit', 'sh*t', 'c0ck', 'cocks', 'cock',
  'n1gga', 'niggger', 'nig', 'dick', 'Dick', 'DICK', 'porn', 'anal', 'an', 'al', 'us', 'is', 'pen', 'orgasm', 'gasm', 'abbo', 'abos', 'abbbbo',
  'doggystyle', 'double penetra', 'sexy', 'seex', 'semen', 'prick', 'pricks', 'whore', 'whoores', 'wh0re', 'cunt', 'c u n t', 'ｃｕｎｔ',
  '\u0441unt', 'ſhit', '𝐟𝐮𝐜𝐤', 'f4g', 'tit', 'tits', 'titt', 'rape', 'rapist', 'turd', 'twat', 'wank', 'cum', 'scat', 'sscat',
  ...whitelist, 'Assess', 'CLASS', 'class', 'grass', 'Dickens', 'dickensian', 'assessassess', 'assassin', 'lan  al', 'an   us', 'pen  is',
  '@', '!', '3', '4', '0', '1', '5', '$', ' ', '  ', '   ', '\t', '\n', '.', '-', '_', "'", ',', 'Ü', 'é', '\u00a0', '\ud800', '\udc00', '\ud83d\ude00',
  'xx', 'a', 'b', 's', 't', 'oo', 'ee', 'k', 'o',
];
const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const text = fc
  .array(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...PIECES) }, fc.string({ unit: 'binary', maxLength: 3 }), surrogate), { maxLength: 60 })
  .map((parts) => parts.join(''));
/** Long texts like the red-team slow path: thousands of characters of terms, near-misses and whitelisted words. */
const flood = fc.array(fc.constantFrom(...PIECES.slice(0, 80), 'assess', 'class', 'Dickens', ' ', ' '), { minLength: 200, maxLength: 900 }).map((p) => p.join(' '));

describe('MatchCount: exactly the span count of obscenity\'s getAllMatches', () => {
  const matcher = new RegExpMatcher({ ...dataset, ...englishRecommendedTransformers });
  const exact = new MatchCount(patterns, whitelist, black, white);
  const bound = new MatchBound(patterns, black);
  const reference = (t: string): number => countSpans(matcher.getAllMatches(t));
  /** As the screen calls it: with the bound's record of the same text. */
  const viaBound = (t: string): number => {
    bound.count(t);
    return exact.count(t, bound.recorded);
  };

  it('on every SpamAssassin mail, with and without the bound\'s record', () => {
    const differ: string[] = [];
    for (const m of loadSpamCorpus()) {
      const t = m.text.slice(0, 4000);
      const want = reference(t);
      if (exact.count(t) !== want || viaBound(t) !== want) differ.push(t.slice(0, 80));
    }
    expect(differ).toEqual([]);
  });

  it('on generated text (terms, near-misses, whitelisted words, leetspeak, look-alikes, separators, surrogates)', () => {
    let matched = 0;
    fc.assert(
      fc.property(text, (t) => {
        const want = reference(t);
        expect(exact.count(t)).toBe(want);
        expect(viaBound(t)).toBe(want);
        if (want > 0) matched += 1;
      }),
      { numRuns: 4000, seed: 21 },
    );
    expect(matched).toBeGreaterThan(1000);
  });

  it('on random strings over the terms\' letters (overlapping terms, optional letters taken or skipped)', () => {
    const letters = fc.constantFrom(...'abcdegiklnoprstuy  .1$'.split(''));
    fc.assert(
      fc.property(fc.array(letters, { maxLength: 40 }).map((a) => a.join('')), (t) => {
        expect(viaBound(t)).toBe(reference(t));
      }),
      { numRuns: 6000, seed: 24 },
    );
  });

  it('takes a greedy optional letter first, as RegExp does (the span then reaches the next term)', () => {
    // `d(?:o)?g(?:g)?ys(?:s)?t(?:y)?l(?:l)?` takes both l's, so it overlaps "lubejob": one span, not two.
    expect(reference('dgystllubejob')).toBe(1);
    expect(exact.count('dgystllubejob')).toBe(1);
  });

  it('on long floods of profanity, near-misses and whitelisted words', () => {
    fc.assert(
      fc.property(flood, (t) => {
        expect(viaBound(t)).toBe(reference(t));
      }),
      { numRuns: 150, seed: 22 },
    );
  });

  it('drops whitelisted words and counts overlapping terms once', () => {
    expect(exact.count('We will assess the class, then read Dickens.')).toBe(0);
    expect(exact.count('assess ass')).toBe(1);
    expect(exact.count('sh1t')).toBe(1); // `\bshit` and `shit\b` overlap: one span
    expect(exact.count('the pen  is mightier')).toBe(0); // the whitelist's spaces collapse
    expect(exact.count('fuck FUCK 𝐟𝐮𝐜𝐤')).toBe(3);
    expect(exact.count('')).toBe(0);
  });

  it('matches obscenity for other transformer sets and whitelists (generic stages, astral images)', () => {
    const sets: [string, TransformerContainer[], TransformerContainer[], string[]][] = [
      ['no collapse, skip non-alphabetic', [...black.slice(0, 3), skipNonAlphabeticTransformer()], [toAsciiLowerCaseTransformer()], ['assess', 'pen is', 'sh it']],
      [
        'astral images, threshold 0',
        [
          createSimpleTransformer((c) => (c === 0x61 ? 0x1d41a : c === 0x1d41f ? 0x66 : c)),
          ...black.slice(1, 3),
          collapseDuplicatesTransformer({ defaultThreshold: 1, customThresholds: new Map([['q', 0], ['s', 2], ['𝐚', 3]]) }),
        ],
        white,
        [...whitelist, '𝐚ss', 'k q'],
      ],
      ['no transformers, no whitelist', [], [], []],
    ];
    const pats = [...patterns, parseRawPattern('𝐚ss|'), parseRawPattern('𝐚𝐚𝐚'), parseRawPattern('q?q')];
    sets.forEach(([, b, w, wl], i) => {
      const m = new RegExpMatcher({ blacklistedTerms: pats.map((pattern, id) => ({ id, pattern })), whitelistedTerms: wl, blacklistMatcherTransformers: b, whitelistMatcherTransformers: w });
      const c = new MatchCount(pats, wl, b, w);
      fc.assert(
        fc.property(text, (t) => {
          expect(c.count(t)).toBe(countSpans(m.getAllMatches(t)));
        }),
        { numRuns: 800, seed: 30 + i },
      );
    });
  });
});

describe('the toxicity screen with the exact count gives the reference verdicts', () => {
  const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
  const rec = (t: string, label: number): TrainingRecord => ({ id: 'x', source: 's', label, text: t });
  it.each([
    ['defaults', DEFAULT_TOXICITY],
    ['one match, no density', { ...DEFAULT_TOXICITY, minMatches: 1, minPer100Words: 0 }],
    ['five matches at 20 per 100 words', { ...DEFAULT_TOXICITY, minMatches: 5, minPer100Words: 20 }],
  ])('%s', (_name, settings) => {
    const fast = new ToxicityDetector(settings);
    const ref = new ToxicityDetector(settings, { reference: true });
    let quarantined = 0;
    fc.assert(
      fc.property(fc.oneof(text, flood), fc.constantFrom(0, 1), (t, label) => {
        const v = fast.screen(rec(t, label), raw as never);
        expect(v).toEqual(ref.screen(rec(t, label), raw as never));
        if (v.kind === 'quarantine') quarantined += 1;
      }),
      { numRuns: 600, seed: 23 },
    );
    expect(quarantined).toBeGreaterThan(20);
    expect(quarantined).toBeLessThan(580);
  });
});

describe('the operator blocklist through the bound and the exact count gives obscenity\'s count', () => {
  // Phrases as operators write them (multi-word, with a placeholder, a single short word), in text that spells
  // them with leetspeak, look-alikes, runs of letters, punctuation around and inside, and as parts of longer words;
  // "kill" inside "kill all": two match ends, one span.
  const phrases = ['kill all', 'kill', 'gas the [x]', 'nazi', 'repeat after me', 'heil'];
  const WORDS = ['kill', 'k1ll', 'KILL', 'kiill', 'all', 'a11', 'alll', 'gas', 'g@s', 'the', 'th3', 'x', 'nazi', 'n4zi', 'nazis', 'ｎａｚｉ',
    'repeat', 'after', 'me', 'heil', 'heill', 'h3il', 'skill', 'allow', 'killall', 'hello', 'the', 'and'];
  const glue = [' ', '  ', '(', ')', '!', '?', '.', ',', '"', '-', '*', '', '\n', ': '];
  const blockText = fc.array(fc.tuple(fc.constantFrom(...WORDS), fc.constantFrom(...glue)), { maxLength: 40 }).map((p) => p.map(([w, g]) => w + g).join(''));
  const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
  const rec = (t: string): TrainingRecord => ({ id: 'x', source: 's', label: 0, text: t });

  it('on generated text: the same verdicts, phrase counts included', () => {
    const settings = { ...DEFAULT_TOXICITY, blocklist: phrases };
    const fast = new ToxicityDetector(settings);
    const ref = new ToxicityDetector(settings, { reference: true });
    let blocked = 0;
    fc.assert(
      fc.property(fc.oneof(blockText, text), (t) => {
        const v = ref.screen(rec(t), raw as never);
        if (v.kind === 'quarantine' && v.reasons.some((r) => r.code === 'blocklisted_phrase')) blocked += 1;
        expect(fast.screen(rec(t), raw as never)).toEqual(v);
      }),
      { numRuns: 1500, seed: 41 },
    );
    // Both sides reached: blocked and not.
    expect(blocked).toBeGreaterThan(150);
    expect(blocked).toBeLessThan(1350);
  });

  it('on every third SpamAssassin mail', () => {
    const settings = { ...DEFAULT_TOXICITY, blocklist: ['click here', 'free', 'money back'] };
    const fast = new ToxicityDetector(settings);
    const ref = new ToxicityDetector(settings, { reference: true });
    let blocked = 0;
    // Every third mail (obscenity's matcher over all 6,046 takes ~14 s).
    for (const { text: t } of loadSpamCorpus().filter((_, i) => i % 3 === 0)) {
      const v = ref.screen(rec(t), raw as never);
      if (v.kind === 'quarantine' && v.reasons.some((r) => r.code === 'blocklisted_phrase')) blocked += 1;
      expect(fast.screen(rec(t), raw as never)).toEqual(v);
    }
    expect(blocked).toBeGreaterThan(150);
  });
});
