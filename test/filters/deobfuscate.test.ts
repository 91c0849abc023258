/**
 * Spaced and masked letters (issue 10: "text screens without the easy bypasses"): the Tay-style flood of the demo
 * got "f u c k all of you" and "piece of sh*t" past the toxicity screen; a clean text must stay as it is.
 */
import { deobfuscate } from '../../filters/deobfuscate';
import { ToxicityDetector } from '../../filters/toxicity';
import { DEFAULT_TOXICITY } from '../../filters/config';
import type { TrainingRecord } from '../../core/record';

const ABUSIVE = new Set(['fuck', 'shit', 'asshole', 'bitch']);
const isAbusive = (w: string) => ABUSIVE.has(w.toLowerCase());

describe('deobfuscate', () => {
  it('joins spaced, dotted and dashed single letters into one word', () => {
    expect(deobfuscate('f u c k all of you', isAbusive)).toBe('fuck all of you');
    expect(deobfuscate('F.U.C.K you', isAbusive)).toBe('FUCK you');
    expect(deobfuscate('s-h-i-t happens', isAbusive)).toBe('shit happens');
  });

  it('fills masked letters only when the unmasked word is abusive', () => {
    expect(deobfuscate('piece of sh*t', isAbusive)).toBe('piece of shit');
    expect(deobfuscate('go to hell a**hole', isAbusive)).toBe('go to hell asshole');
    expect(deobfuscate('b#tch', isAbusive)).toBe('bitch');
    // Honest masks and arithmetic stay: no spelling of them is abusive.
    for (const clean of ['5*3 = 15', 'a*b + c', 'see footnote*', 'p*value < 0.05', 'C# and F# are languages', '50% off']) {
      expect(deobfuscate(clean, isAbusive)).toBe(clean);
    }
  });

  it('never lengthens a text, and leaves ordinary prose alone', () => {
    const prose = 'I met J. R. R. Tolkien once; a b testing is fine. Call 555-1234 at 5 p.m.';
    const out = deobfuscate(prose, isAbusive);
    expect(out.length).toBeLessThanOrEqual(prose.length);
    expect(out).not.toMatch(/fuck|shit/);
  });
});

describe('toxicity with deobfuscation (the demo flood)', () => {
  const tox = new ToxicityDetector({ ...DEFAULT_TOXICITY, abuseLabels: [] });
  const rec = (text: string): TrainingRecord => ({ id: 'x', source: 's', label: 0, text });
  it.each(['you stupid f*cking idiot', 'shut up b1tch', 'f u c k all of you', 'what a dumb sh1t, go to hell a**hole', 'die you worthless piece of sh*t'])(
    'quarantines "%s" said twice',
    (abuse) => {
      expect(tox.screen(rec(`${abuse}! ${abuse}, lol`)).kind).toBe('quarantine');
    },
  );
});
