import { hasCode } from '../../../core/errors';
import { dpTprBound, dpTprBounds, membershipAdvantage, miaMetrics, rocAuc, rocCurve, tprAtFpr } from '../../../privacy/audit';

describe('ROC AUC', () => {
  it('is 1 for perfectly separated scores and 0 for perfectly reversed ones', () => {
    expect(rocAuc([5, 6, 7], [1, 2, 3])).toBe(1);
    expect(rocAuc([1, 2, 3], [5, 6, 7])).toBe(0);
  });

  it('is 0.5 when every score is identical', () => {
    expect(rocAuc([1, 1, 1, 1], [1, 1, 1])).toBe(0.5);
  });

  it('matches a hand-computed Mann–Whitney count with a tie', () => {
    // members {0.9, 0.6, 0.4}, non-members {0.7, 0.4, 0.2}:
    // 0.9 beats all 3; 0.6 beats 0.4, 0.2 (2); 0.4 beats 0.2 and ties 0.4 (1.5) → 6.5 / 9.
    expect(rocAuc([0.9, 0.6, 0.4], [0.7, 0.4, 0.2])).toBeCloseTo(6.5 / 9, 12);
  });

  it('builds the hand-made ROC curve vertex by vertex, a tie as one diagonal step', () => {
    const roc = rocCurve([0.9, 0.6, 0.4], [0.7, 0.4, 0.2]).map((p) => [p.fpr, p.tpr]);
    expect(roc).toEqual([
      [0, 0],
      [0, 1 / 3],
      [1 / 3, 1 / 3],
      [1 / 3, 2 / 3],
      [2 / 3, 1],
      [1, 1],
    ]);
    expect(membershipAdvantage([0.9, 0.6, 0.4], [0.7, 0.4, 0.2])).toBeCloseTo(1 / 3, 12);
  });

  it('rejects empty and NaN inputs with ARGUMENT_INVALID', () => {
    expect(() => rocAuc([], [1])).toThrow();
    let err: unknown;
    try {
      rocAuc([NaN], [1]);
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'ARGUMENT_INVALID')).toBe(true);
  });
});

describe('TPR at fixed FPR', () => {
  // 4 non-members → FPR steps of 0.25; members interleaved.
  const members = [10, 9, 7, 5];
  const nonMembers = [8, 6, 4, 3];
  // ROC: (0,0) (0,.25) (0,.5) (.25,.5) (.25,.75) (.5,.75) (.5,1) (.75,1) (1,1)

  it('step rule: TPR of the loosest threshold whose FPR ≤ target', () => {
    expect(tprAtFpr(members, nonMembers, 0, 'step')).toBe(0.5);
    expect(tprAtFpr(members, nonMembers, 0.1, 'step')).toBe(0.5);
    expect(tprAtFpr(members, nonMembers, 0.25, 'step')).toBe(0.75);
    expect(tprAtFpr(members, nonMembers, 0.3, 'step')).toBe(0.75);
  });

  it('interpolate rule: linear between adjacent ROC vertices (a randomised threshold)', () => {
    // between (0, 0.5) and (0.25, 0.5) → flat; past 0.25 at (0.25, 0.75) → (0.5, 0.75) flat, then (0.5, 1).
    expect(tprAtFpr(members, nonMembers, 0.1)).toBe(0.5);
    // Tied pair: member 1 and non-member 1 at the same score → one diagonal segment (0,0)→(1,1).
    expect(tprAtFpr([1], [1], 0.01)).toBeCloseTo(0.01, 12);
    expect(tprAtFpr([1], [1], 0.01, 'step')).toBe(0);
    // 10 non-members; the only member above all → TPR 1 at FPR 0.
    expect(tprAtFpr([5], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0.001)).toBe(1);
  });

  it('interpolates a diagonal segment between separated vertices', () => {
    // members 2 of 2 above 1 of 2 non-members: ROC (0,0) (0,0.5) (0.5,0.5)→ with tie at 2: (0.5,1) (1,1)
    const roc = rocCurve([3, 2], [2, 1]).map((p) => [p.fpr, p.tpr]);
    expect(roc).toEqual([
      [0, 0],
      [0, 0.5],
      [0.5, 1],
      [1, 1],
    ]);
    expect(tprAtFpr([3, 2], [2, 1], 0.1)).toBeCloseTo(0.6, 12);
    expect(tprAtFpr([3, 2], [2, 1], 0.1, 'step')).toBe(0.5);
  });

  it('miaMetrics collects the headline numbers with the FPR resolution', () => {
    const m = miaMetrics(members, nonMembers);
    expect(m.auc).toBeCloseTo(rocAuc(members, nonMembers), 12);
    expect(m.tprAt0001).toBe(0.5);
    expect(m.tprAt001).toBe(0.5);
    expect(m.fprResolution).toBe(0.25);
    expect(m.members).toBe(4);
  });
});

describe('DP trade-off bound', () => {
  it('is e^ε·FPR + δ at low FPR and 1 − e^−ε(1 − δ − FPR) near FPR 1', () => {
    expect(dpTprBound(1, 1e-5, 0.001)).toBeCloseTo(Math.E * 0.001 + 1e-5, 15);
    expect(dpTprBound(0, 0, 0.3)).toBeCloseTo(0.3, 15);
    expect(dpTprBound(2, 0, 0.9)).toBeCloseTo(1 - Math.exp(-2) * 0.1, 15);
    expect(dpTprBound(50, 0, 0.5)).toBe(1);
    expect(dpTprBound(Infinity, 0, 0)).toBe(0);
    const b = dpTprBounds(3, 1e-5);
    expect(b.tprAt0001).toBeCloseTo(Math.exp(3) * 0.001 + 1e-5, 12);
    expect(b.tprAt001).toBeCloseTo(Math.exp(3) * 0.01 + 1e-5, 12);
    // At ε = 8 the second constraint binds even at FPR 0.1%: e^8·0.001 ≈ 2.98 > 1.
    expect(dpTprBounds(8, 1e-5).tprAt0001).toBeCloseTo(1 - Math.exp(-8) * (1 - 1e-5 - 0.001), 12);
  });
});
