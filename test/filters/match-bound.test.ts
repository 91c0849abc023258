import fc from 'fast-check';
import {
  collapseDuplicatesTransformer,
  createSimpleTransformer,
  englishDataset,
  englishRecommendedTransformers,
  parseRawPattern,
  type TransformerContainer,
} from 'obscenity';
import { MatchBound, countWords } from '../../filters/match-bound';
import { TermAutomaton } from '../../filters/term-automaton';
import { compileTransformersInto } from '../../filters/transform';
import { ToxicityDetector } from '../../filters/toxicity';
import { DEFAULT_TOXICITY } from '../../filters/config';
import { loadSpamCorpus } from '../../src/data/spam';
import type { TrainingRecord } from '../../core/record';

// The toxicity screen's bound runs the transformers, the DFA walk and the word count in one loop
// (filters/match-bound.ts). It must give exactly what the two-pass form gives — the transformed units in a buffer
// (filters/transform.ts, itself compared with obscenity's own transform in content.test.ts), then
// TermAutomaton.countEnds, then countWords — and so exactly the screen's verdicts of `{ reference: true }`.
const patterns = englishDataset.build().blacklistedTerms.map((t) => t.pattern);
const english = englishRecommendedTransformers.blacklistMatcherTransformers ?? [];

function twoPass(pats: typeof patterns, transformers: readonly TransformerContainer[]): (text: string) => [number, number] {
  const automaton = new TermAutomaton(pats);
  const transform = compileTransformersInto(transformers);
  return (text) => {
    const { units, length } = transform(text);
    return [automaton.countEnds(units, length, () => false), countWords(text)];
  };
}
function fused(bound: MatchBound): (text: string) => [number, number] {
  return (text) => [bound.count(text), bound.words];
}

// Pieces near the terms and near the transformers' edge cases: confusables (Cyrillic, fullwidth, long s,
// mathematical bold — astral), leetspeak, masks, separators, doubled letters (collapse thresholds 1 and 2),
// whitespace of each kind, word/non-word boundaries, lone and paired surrogates.
const PIECES = [
  'fuck', 'f.ck', 'fk', 'fu', 'fuuuuck', 'ass', 'a$$', 'bitch', 'b1tch', 'sh1t', 'sh*t', 'c0ck', 'cocks', 'n1gga', 'niggger', 'dick',
  'porn', 'anal', 'analyst', 'orgasm', 'gasm', 'abbo', 'abbbbo', 'abos', 'doggystyle', 'double penetra', 'sexy', 'seex', 'f u c k',
  'cunt', 'ｃｕｎｔ', '\u0441unt', 'ſhit', '𝐟𝐮𝐜𝐤', 'wh0re', 'f4g', '@', '!', '3', '4', '0', '1', '$',
  ' ', '  ', '\t', '\n', '\r\n', '.', '-', '_', ',', '9', 'Ü', 'é', '\u00a0', '\u200b', '\ud800', '\udc00', '\ud83d\ude00', 'xx', 'a', 'b', 's', 't', 'oo', 'ee',
];
const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const text = fc
  .array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...PIECES) }, fc.string({ unit: 'binary', maxLength: 4 }), surrogate), { maxLength: 40 })
  .map((parts) => parts.join(''));

describe('MatchBound: the fused loop is the two-pass bound, exactly', () => {
  const bound = new MatchBound(patterns, english);
  const fast = fused(bound);
  const slow = twoPass(patterns, english);

  it("takes the fused loop for obscenity's English transformers", () => expect(bound.fused).toBe(true));

  it('gives the same count and word count on every SpamAssassin mail', () => {
    const differ: string[] = [];
    for (const m of loadSpamCorpus()) if (JSON.stringify(fast(m.text)) !== JSON.stringify(slow(m.text))) differ.push(m.text.slice(0, 80));
    expect(differ).toEqual([]);
  });

  it('gives the same counts on generated text (confusables, leetspeak, separators, surrogates, repeats)', () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(fast(t)).toEqual(slow(t));
      }),
      { numRuns: 3000, seed: 11 },
    );
  });

  it('counts separate abusive words and the words around them', () => {
    expect(fast('Thanks for the notes, see you on Monday.')).toEqual([0, 8]);
    expect(fast('fuck')).toEqual([1, 1]);
    expect(fast('fu')).toEqual([1, 1]); // `\bfu\b`, the end boundary being the end of the text
    expect(fast('bass  fun\tfuck\n𝐟𝐮𝐜𝐤')).toEqual([2, 4]);
    expect(fast('')).toEqual([0, 0]);
  });

  it('falls back to the two-pass form, with the same counts, for other transformer sets', () => {
    // Collapse with an unbounded threshold (obscenity's whitelist stage) cannot be packed in the table.
    const unbounded = [...english.slice(0, 3), collapseDuplicatesTransformer({ defaultThreshold: Number.POSITIVE_INFINITY, customThresholds: new Map([[' ', 1]]) })];
    const b = new MatchBound(patterns, unbounded);
    expect(b.fused).toBe(false);
    const [f, s] = [fused(b), twoPass(patterns, unbounded)];
    fc.assert(fc.property(text, (t) => expect(f(t)).toEqual(s(t))), { numRuns: 500, seed: 12 });
  });

  it('handles a stage that maps BMP letters to astral ones and back, and a threshold of 0 (dropped)', () => {
    // Images outside the BMP take the fused loop's two-unit path; "q" has threshold 0, so every "q" is dropped.
    // (An astral letter is two non-word units to RegExp without the u flag: `\b𝐚` never matches, so no `|𝐚ss|`.)
    const astral = [
      createSimpleTransformer((c) => (c === 0x61 ? 0x1d41a : c === 0x1d41f ? 0x66 : c)),
      ...english.slice(1, 3),
      collapseDuplicatesTransformer({ defaultThreshold: 1, customThresholds: new Map([['q', 0], ['s', 2], ['𝐚', 3]]) }),
    ];
    const pats = [...patterns, parseRawPattern('𝐚ss|'), parseRawPattern('𝐚𝐚𝐚')];
    const b = new MatchBound(pats, astral);
    expect(b.fused).toBe(true);
    const [f, s] = [fused(b), twoPass(pats, astral)];
    expect(f('aaaa ass q𝐟uck')).toEqual(s('aaaa ass q𝐟uck'));
    expect(f('aaaa ass q𝐟uck')[0]).toBeGreaterThanOrEqual(3);
    fc.assert(fc.property(text, (t) => expect(f(t)).toEqual(s(t))), { numRuns: 1000, seed: 13 });
  });
});

describe('the toxicity screen with the fused bound gives the reference verdicts on generated text', () => {
  const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
  const rec = (t: string, label: number): TrainingRecord => ({ id: 'x', source: 's', label, text: t });
  it.each([
    ['defaults', DEFAULT_TOXICITY],
    ['one match, no density', { ...DEFAULT_TOXICITY, minMatches: 1, minPer100Words: 0 }],
    ['three matches at 10 per 100 words, label 0 only, a blocklist', { ...DEFAULT_TOXICITY, minMatches: 3, minPer100Words: 10, labels: [0], blocklist: ['kill all'] }],
  ])('%s', (_name, settings) => {
    const fast = new ToxicityDetector(settings);
    const ref = new ToxicityDetector(settings, { reference: true });
    let quarantined = 0;
    fc.assert(
      fc.property(text, fc.constantFrom(0, 1), (t, label) => {
        const v = fast.screen(rec(t, label), raw as never);
        expect(v).toEqual(ref.screen(rec(t, label), raw as never));
        if (v.kind === 'quarantine') quarantined += 1;
      }),
      { numRuns: 800, seed: 14 },
    );
    // The generated texts reach both sides of the thresholds (the test would be empty otherwise).
    expect(quarantined).toBeGreaterThan(20);
    expect(quarantined).toBeLessThan(780);
  });
});
