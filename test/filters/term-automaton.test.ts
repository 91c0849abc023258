import fc from 'fast-check';
import { RegExpMatcher, englishDataset, englishRecommendedTransformers, parseRawPattern } from 'obscenity';
import { TermAutomaton } from '../../filters/term-automaton';
import { countSpans } from '../../filters/toxicity';
import { compileTransformersInto } from '../../filters/transform';
import { loadSpamCorpus } from '../../src/data/spam';

// The toxicity screen decides a text without obscenity's matcher only when this automaton's count is below its
// thresholds, so the count must never be below the number of distinct spans obscenity reports.
const dataset = englishDataset.build();
const matcher = new RegExpMatcher({ ...dataset, ...englishRecommendedTransformers });
const automaton = new TermAutomaton(dataset.blacklistedTerms.map((t) => t.pattern));
const transform = compileTransformersInto(englishRecommendedTransformers.blacklistMatcherTransformers ?? []);

const spans = (text: string): number => countSpans(matcher.getAllMatches(text));
function ends(text: string): number {
  const { units, length } = transform(text);
  return automaton.countEnds(units, length, () => false);
}

describe('TermAutomaton: an upper bound on obscenity match spans, one pass', () => {
  it('counts nothing in clean text and each separate abusive word once', () => {
    expect(ends('Thanks for the notes from the meeting, see you on Monday.')).toBe(0);
    expect(ends('fuck')).toBe(1);
    expect(ends('you f*ck, sh1t and a bitch')).toBeGreaterThanOrEqual(3);
    expect(ends('ass')).toBe(1); // `\bass` at the start of the text
    expect(ends('bass')).toBe(0); // …but not inside a word
    expect(ends('fu')).toBe(1); // `\bfu\b`, the end boundary being the end of the text
    expect(ends('fun')).toBe(0);
  });

  it('is never below the spans obscenity reports, on every SpamAssassin mail', () => {
    const below: string[] = [];
    for (const m of loadSpamCorpus()) if (ends(m.text) < spans(m.text)) below.push(m.text.slice(0, 80));
    expect(below).toEqual([]);
  });

  it('is never below them on generated text near the terms (boundaries, wildcards, doubled letters, surrogates)', () => {
    const pieces = ['fuck', 'f.ck', 'fk', 'fu', 'ass', 'bitch', 'sh1t', 'c0ck', 'cocks', 'n1gga', 'dick', 'porn', 'anal', 'analyst', 'orgasm', 'gasm', 'abbo', 'abos', 'doggystyle', 'double penetra', 'sexy', 'seex', ' ', '.', '_', '9', 'Ü', '𝐟', '\ud800', 'xx', 'a', 'b', 's', 't'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 30 }), (parts) => {
        const text = parts.join('');
        return ends(text) >= spans(text);
      }),
      { numRuns: 2000, seed: 10 },
    );
  });

  it('bounds an operator blocklist pattern too (multi-word, whole-word)', () => {
    const patterns = ['|kill all|', '|nazi|'].map(parseRawPattern);
    const op = new TermAutomaton(patterns);
    const count = (t: string) => {
      const { units, length } = transform(t);
      return op.countEnds(units, length, () => false);
    };
    expect(count('we should kill all of them, nazi')).toBe(2);
    expect(count('skill allows nazis')).toBe(0);
  });
});
