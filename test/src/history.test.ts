/** The status page's history (src/history.ts): bounded, still covering the whole run, two halves kept apart. */
import { emptyCounts } from '../../src/counts';
import { StatusHistory } from '../../src/history';

const sample = (i: number) => ({
  at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
  epsilonSpent: i / 100,
  steps: i,
  modelVersion: i,
  checkpointSeq: i,
  counts: { ...emptyCounts(), trained: 10 * i, quarantined: i, quarantineStages: { echo: i } },
  gate: null,
});

describe('StatusHistory', () => {
  it('never holds more than its capacity, and keeps the first and the newest samples as it thins', () => {
    const h = new StatusHistory(50);
    for (let i = 0; i < 10_000; i++) h.record(sample(i));
    const pub = h.publicSamples();
    expect(pub.length).toBeLessThan(50);
    expect(pub.length).toBeGreaterThan(20);
    expect(pub[0].steps).toBe(0);
    expect(pub.at(-1)?.steps).toBe(9_999);
    // Oldest first, and the recent half at full resolution.
    const steps = pub.map((s) => s.steps ?? -1);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(steps.slice(-10)).toEqual([9_990, 9_991, 9_992, 9_993, 9_994, 9_995, 9_996, 9_997, 9_998, 9_999]);
  });

  it('keeps counts out of the public half and copies them into the operator half (later changes do not leak in)', () => {
    const h = new StatusHistory();
    const s = sample(3);
    h.record(s);
    s.counts.quarantineStages.echo = 99;
    expect(h.publicSamples()).toEqual([{ at: s.at, epsilonSpent: 0.03, steps: 3, modelVersion: 3, checkpointSeq: 3 }]);
    expect(h.operatorSamples()).toEqual([{ at: s.at, trained: 30, quarantined: 3, skipped: 0, quarantineStages: { echo: 3 }, gate: null }]);
  });
});
