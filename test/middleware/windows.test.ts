/**
 * The witness scores a text's windows from rows hashed once per token (middleware/windows.ts); each row must be
 * exactly what the hashed-text featurizer gives for that window's text, and the fast forward pass what tfjs gives.
 */
import { initTf } from '../../core/tf';
import { hashedTextFeaturizer } from '../../middleware/featurize';
import { hashedWindowRows, windowSpans } from '../../middleware/windows';
import { sparseForward } from '../../middleware/fast-predict';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { textWindows } from '../../filters/witness';
import { loadSpamCorpus } from '../../src/data/spam';

const sorted = (r: { indices: number[]; values: number[] }) => r.indices.map((j, i) => [j, r.values[i]] as const).sort((a, b) => a[0] - b[0]);

describe('text windows', () => {
  it('step by half a window, cover every token, and are one window for short texts', () => {
    expect(windowSpans(0, 40)).toEqual([]);
    expect(windowSpans(7, 40)).toEqual([[0, 7]]);
    expect(windowSpans(40, 40)).toEqual([[0, 40]]);
    expect(windowSpans(41, 40)).toEqual([[0, 40], [20, 41]]);
    expect(windowSpans(100, 40)).toEqual([[0, 40], [20, 60], [40, 80], [60, 100]]);
    expect(windowSpans(5, 1)).toEqual([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]);
  });

  it('hashed once per token, each row equals the featurizer on that window\'s text (real mails, non-ASCII included)', () => {
    const f = hashedTextFeaturizer(4096);
    const texts = [...loadSpamCorpus().slice(0, 300).map((m) => m.text), 'Ｆｒｅｅ ｍｏｎｅｙ don\'t İstanbul ÇA VA ' + 'naïve café '.repeat(40), ''];
    let windows = 0;
    for (const text of texts) {
      const rows = hashedWindowRows(text, 4096, 40, 2000);
      const expected = textWindows(text, 40, 2000).map((w) => f.encodeSparse!({ text: w }));
      expect(rows.length).toBe(expected.length);
      rows.forEach((r, k) => {
        const a = sorted(r);
        const b = sorted(expected[k]);
        expect(a.map((x) => x[0])).toEqual(b.map((x) => x[0]));
        a.forEach((x, i) => expect(x[1]).toBeCloseTo(b[i][1], 12));
      });
      windows += rows.length;
    }
    expect(windows).toBeGreaterThan(1000);
  });

  it('the sparse forward pass gives what tfjs gives (linear and one hidden layer)', async () => {
    await initTf();
    for (const hiddenUnits of [0, 16]) {
      const learner = new TfjsLearner(buildModel({ inputDim: 512, numClasses: 3, hiddenUnits, seed: 5 }), featurizerFor('text', 512), { learningRate: 1 });
      const forward = sparseForward(learner)!;
      const text = loadSpamCorpus()[7].text;
      const fast = hashedWindowRows(text, 512, 40, 20_000).map(forward);
      const slow = learner.predict(textWindows(text, 40, 20_000).map((w) => ({ text: w })));
      expect(fast.length).toBe(slow.length);
      fast.forEach((p, k) => p.forEach((x, c) => expect(x).toBeCloseTo(slow[k][c], 5)));
    }
  });
});
