import { PrivacyBudget, sourceSampleRate } from '../../../privacy/budget';
import { rdpEpsilon } from '../../../privacy/accountants';
import { hasCode } from '../../../core/errors';

const DELTA = 1e-5;

describe('PrivacyBudget (record level)', () => {
  it('refuses the step that would overshoot, and ε never exceeds the limit', () => {
    const b = new PrivacyBudget({ epsilonLimit: 1, delta: DELTA });
    const q = 0.05;
    const sigma = 2.0;
    let taken = 0;
    while (b.canStep(q, sigma)) {
      b.recordStep(q, sigma);
      taken++;
      expect(b.spent).toBeLessThanOrEqual(1);
    }
    expect(taken).toBeGreaterThan(0);
    // the refused step really would overshoot
    expect(rdpEpsilon([{ sampleRate: q, noiseMultiplier: sigma, steps: taken + 1 }], DELTA).epsilon).toBeGreaterThan(1);
    expect(() => b.recordStep(q, sigma)).toThrow(expect.objectContaining({ code: 'BUDGET_EXHAUSTED' }));
    expect(b.steps).toBe(taken);
    const st = b.status();
    expect(st.exhausted).toBe(true);
    expect(st.spent).toBeLessThanOrEqual(1);
    expect(st.remaining).toBeCloseTo(1 - st.spent, 12);
    expect(st.epsilonRdp).toBe(st.spent);
    expect(st.epsilonPrv).not.toBeNull();
    expect(st.epsilonPrv as number).toBeLessThanOrEqual(st.epsilonRdp + 0.02);
  });

  it('restores from JSON with ε equal and keeps refusing', () => {
    const b = new PrivacyBudget({ epsilonLimit: 2, delta: DELTA });
    for (let i = 0; i < 50; i++) b.recordStep(0.01, 1.1);
    for (let i = 0; i < 30; i++) b.recordStep(0.02, 0.9);
    const restored = PrivacyBudget.fromJSON(JSON.parse(JSON.stringify(b.toJSON())));
    expect(restored.spent).toBe(b.spent);
    expect(restored.steps).toBe(80);
    expect(restored.status()).toEqual(b.status());
    expect(restored.canStep(0.02, 0.9)).toBe(b.canStep(0.02, 0.9));
  });

  it('rejects a corrupt checkpoint', () => {
    const state = new PrivacyBudget({ epsilonLimit: 2, delta: DELTA }).toJSON();
    const bad = { ...state, accountantState: { kind: 'rdp', version: 1, history: [{ sampleRate: 2, noiseMultiplier: 1, steps: 1 }] } };
    expect(() => PrivacyBudget.fromJSON(bad)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
  });

  it('streaming window: charges the worst W-step window, not the whole stream', () => {
    const W = 20;
    const b = new PrivacyBudget({ epsilonLimit: 3, delta: DELTA, window: W });
    for (let i = 0; i < 200; i++) b.recordStep(0.1, 1.5);
    const windowEps = rdpEpsilon([{ sampleRate: 0.1, noiseMultiplier: 1.5, steps: W }], DELTA).epsilon;
    expect(b.spent).toBeCloseTo(windowEps, 12);
    expect(b.status().steps).toBe(200);
    // a burst of low-noise steps raises the worst window, and ε never goes back down afterwards
    while (b.canStep(0.1, 1.0)) b.recordStep(0.1, 1.0);
    const peak = b.spent;
    expect(peak).toBeGreaterThan(windowEps);
    expect(peak).toBeLessThanOrEqual(3);
    for (let i = 0; i < 50; i++) b.recordStep(0.1, 5);
    expect(b.spent).toBe(peak);
    const restored = PrivacyBudget.fromJSON(JSON.parse(JSON.stringify(b.toJSON())));
    expect(restored.spent).toBe(peak);
  });

  it('reports PRV as null with a reason when the grid would be too large', () => {
    const b = new PrivacyBudget({ epsilonLimit: 1e6, delta: DELTA, epsError: 1e-4 });
    b.recordStep(0.5, 0.5);
    for (let i = 0; i < 10; i++) b.recordStep(0.5 - i * 1e-3, 0.5); // distinct segments
    const st = b.status();
    if (st.epsilonPrv === null) {
      expect(st.prvUnavailableReason).toMatch(/PRV/);
    } else {
      expect(st.prvUnavailableReason).toBeNull();
    }
  });
});

describe('PrivacyBudget (source level)', () => {
  const plan = { sampleRate: 0.05, noiseMultiplier: 1.0 };

  it('enforces at most k records per source in the window', () => {
    const b = new PrivacyBudget({ epsilonLimit: 10, delta: DELTA, unit: 'source', window: 5, maxRecordsPerSource: 3, plan });
    for (let i = 0; i < 3; i++) b.admitSource('alice');
    const d = b.checkSource('alice');
    expect(d).toMatchObject({ ok: false, reason: 'source_record_cap', activeRecords: 3 });
    expect(b.sourceCanContribute('bob')).toBe(true);
    expect(() => b.admitSource('alice')).toThrow(expect.objectContaining({ code: 'BUDGET_EXHAUSTED' }));
    // after the window passes, the records have left and alice may send again
    for (let t = 0; t < 5; t++) b.recordStep(plan.sampleRate, plan.noiseMultiplier);
    expect(b.checkSource('alice').activeRecords).toBe(0);
    expect(b.sourceCanContribute('alice')).toBe(true);
  });

  it('accounts each source for the steps it was present, at rate 1 − (1 − q)^k', () => {
    const k = 4;
    const b = new PrivacyBudget({ epsilonLimit: 50, delta: DELTA, unit: 'source', window: 10, maxRecordsPerSource: k, plan });
    b.admitSource('a');
    for (let t = 0; t < 3; t++) b.recordStep(plan.sampleRate, plan.noiseMultiplier);
    b.admitSource('b'); // b present for steps 3..12, a for 0..9
    for (let t = 0; t < 15; t++) b.recordStep(plan.sampleRate, plan.noiseMultiplier);
    const rate = sourceSampleRate(plan.sampleRate, k);
    expect(rate).toBeCloseTo(1 - (1 - 0.05) ** 4, 12);
    const epsA = rdpEpsilon([{ sampleRate: rate, noiseMultiplier: 1, steps: 10 }], DELTA).epsilon;
    expect(b.sourceEpsilon('a')).toBeCloseTo(epsA, 12);
    expect(b.sourceEpsilon('b')).toBeCloseTo(epsA, 12);
    expect(b.sourceEpsilon('nobody')).toBe(0);
    expect(b.status().sources).toEqual({ tracked: 2, present: 0 });
  });

  it('refuses a source whose ε would pass its limit, and restores per-source ε', () => {
    // one window of 20 steps at q_src = 1 − 0.95², σ = 1.5 costs ≈ 1.92; a second window would pass 2
    const plan = { sampleRate: 0.05, noiseMultiplier: 1.5 };
    const b = new PrivacyBudget({ epsilonLimit: 2, delta: DELTA, unit: 'source', window: 20, maxRecordsPerSource: 2, plan });
    let refused: string | null = null;
    for (let round = 0; round < 100 && refused === null; round++) {
      const d = b.checkSource('chatty');
      if (!d.ok) {
        refused = d.reason;
        break;
      }
      b.admitSource('chatty');
      for (let t = 0; t < 20; t++) {
        if (!b.canStep(plan.sampleRate, plan.noiseMultiplier)) break;
        b.recordStep(plan.sampleRate, plan.noiseMultiplier);
      }
    }
    expect(refused).toBe('source_budget_exhausted');
    expect(b.sourceEpsilon('chatty')).toBeLessThanOrEqual(2);
    expect(b.spent).toBe(b.sourceEpsilon('chatty'));
    const restored = PrivacyBudget.fromJSON(JSON.parse(JSON.stringify(b.toJSON())));
    expect(restored.sourceEpsilon('chatty')).toBe(b.sourceEpsilon('chatty'));
    expect(restored.spent).toBe(b.spent);
    expect(restored.sourceCanContribute('chatty')).toBe(false);
    expect(restored.sourceCanContribute('fresh')).toBe(true);
  });

  it('needs a window and k', () => {
    try {
      new PrivacyBudget({ epsilonLimit: 1, delta: DELTA, unit: 'source' });
      throw new Error('expected a throw');
    } catch (err) {
      expect(hasCode(err, 'ARGUMENT_INVALID')).toBe(true);
    }
  });
});
