/**
 * Membership-inference metrics: ROC curve, ROC AUC, membership advantage, TPR at a fixed low FPR, and the
 * trade-off bound that (ε, δ)-DP places on every membership test.
 *
 * Conventions: a *score* is "higher = more likely a member". Members are the positives; TPR is the share of
 * members flagged, FPR the share of non-members flagged, by the test "score ≥ threshold".
 *
 * TPR at a target FPR (Carlini et al. 2022 argue this, not AUC, is the metric that matters):
 *   rule 'interpolate' (default) — linear interpolation between adjacent vertices of the empirical ROC curve.
 *     Every point on such a segment is achieved by a randomised test (use the stricter threshold with
 *     probability λ, the looser one otherwise), so the value is an attainable (TPR, FPR) pair, and tied scores
 *     are treated as one diagonal step rather than in an arbitrary order.
 *   rule 'step' — the TPR of the deterministic threshold with the largest FPR ≤ target (the conservative
 *     choice of Carlini et al.'s reference code). Never above 'interpolate'.
 * With n non-members the empirical FPR moves in steps of 1/n: a target below 1/n (e.g. 0.1% with fewer than
 * 1000 non-members) is resolved only by interpolation towards FPR = 0; `fprResolution` is reported for that.
 */
import { TayguardError } from '../../core/errors';

export interface RocPoint {
  readonly fpr: number;
  readonly tpr: number;
  /** The test is "score ≥ threshold"; +Infinity for the (0, 0) vertex. */
  readonly threshold: number;
}

export type TprRule = 'interpolate' | 'step';

export interface MiaMetrics {
  readonly auc: number;
  /** max over thresholds of TPR − FPR (Yeom et al. 2018's membership advantage). */
  readonly advantage: number;
  /** TPR at FPR = 0.1%. */
  readonly tprAt0001: number;
  /** TPR at FPR = 1%. */
  readonly tprAt001: number;
  readonly members: number;
  readonly nonMembers: number;
  /** 1 / nonMembers: the finest FPR the data can resolve. */
  readonly fprResolution: number;
  readonly rule: TprRule;
}

function checkScores(name: string, scores: ArrayLike<number>): void {
  if (scores.length === 0) {
    throw new TayguardError('ARGUMENT_INVALID', `${name} scores are empty; pass at least one score for members and for non-members`);
  }
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) {
      throw new TayguardError('ARGUMENT_INVALID', `${name} score ${i} is NaN; check the attack's inputs (losses/probabilities)`);
    }
  }
}

function checkFpr(fpr: number): void {
  if (typeof fpr !== 'number' || !(fpr >= 0 && fpr <= 1)) {
    throw new TayguardError('ARGUMENT_INVALID', `FPR must be in [0, 1], got ${String(fpr)}`);
  }
}

/**
 * Vertices of the empirical ROC curve, from (0, 0) to (1, 1), one per distinct score (descending threshold).
 * Tied member/non-member scores move both coordinates in one vertex.
 */
export function rocCurve(memberScores: ArrayLike<number>, nonMemberScores: ArrayLike<number>): RocPoint[] {
  checkScores('member', memberScores);
  checkScores('non-member', nonMemberScores);
  const all: { s: number; member: boolean }[] = [];
  for (let i = 0; i < memberScores.length; i++) all.push({ s: memberScores[i], member: true });
  for (let i = 0; i < nonMemberScores.length; i++) all.push({ s: nonMemberScores[i], member: false });
  all.sort((a, b) => b.s - a.s);
  const P = memberScores.length;
  const N = nonMemberScores.length;
  const points: RocPoint[] = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  let i = 0;
  while (i < all.length) {
    const s = all[i].s;
    while (i < all.length && all[i].s === s) {
      if (all[i].member) tp++;
      else fp++;
      i++;
    }
    points.push({ fpr: fp / N, tpr: tp / P, threshold: s });
  }
  return points;
}

/**
 * ROC AUC = P(member score > non-member score) + ½ P(equal) (Mann–Whitney U / (P·N)): 1 for perfectly
 * separated scores, ½ for identical ones. Equals the trapezoid area under `rocCurve`.
 */
export function rocAuc(memberScores: ArrayLike<number>, nonMemberScores: ArrayLike<number>): number {
  const roc = rocCurve(memberScores, nonMemberScores);
  let area = 0;
  for (let k = 1; k < roc.length; k++) area += ((roc[k].fpr - roc[k - 1].fpr) * (roc[k].tpr + roc[k - 1].tpr)) / 2;
  return area;
}

/** max over thresholds of TPR − FPR (≥ 0: the empty test achieves 0). */
export function membershipAdvantage(memberScores: ArrayLike<number>, nonMemberScores: ArrayLike<number>): number {
  let best = 0;
  for (const p of rocCurve(memberScores, nonMemberScores)) best = Math.max(best, p.tpr - p.fpr);
  return best;
}

/** TPR at the given FPR on an ROC curve from `rocCurve`; see the module comment for the two rules. */
export function tprAtFprFromRoc(roc: readonly RocPoint[], fpr: number, rule: TprRule = 'interpolate'): number {
  checkFpr(fpr);
  if (rule !== 'interpolate' && rule !== 'step') {
    throw new TayguardError('ARGUMENT_INVALID', `rule must be 'interpolate' or 'step', got ${String(rule)}`);
  }
  let best = 0;
  for (let k = 0; k < roc.length; k++) {
    const p = roc[k];
    if (p.fpr <= fpr) {
      best = Math.max(best, p.tpr);
      continue;
    }
    // First vertex past the target: interpolate on the segment from the previous vertex.
    if (rule === 'interpolate' && k > 0) {
      const a = roc[k - 1];
      const lambda = (fpr - a.fpr) / (p.fpr - a.fpr);
      best = Math.max(best, a.tpr + lambda * (p.tpr - a.tpr));
    }
    break;
  }
  return best;
}

export function tprAtFpr(
  memberScores: ArrayLike<number>,
  nonMemberScores: ArrayLike<number>,
  fpr: number,
  rule: TprRule = 'interpolate',
): number {
  return tprAtFprFromRoc(rocCurve(memberScores, nonMemberScores), fpr, rule);
}

/** All the headline metrics in one pass over the ROC curve. */
export function miaMetrics(
  memberScores: ArrayLike<number>,
  nonMemberScores: ArrayLike<number>,
  rule: TprRule = 'interpolate',
): MiaMetrics {
  const roc = rocCurve(memberScores, nonMemberScores);
  let auc = 0;
  let advantage = 0;
  for (let k = 1; k < roc.length; k++) {
    auc += ((roc[k].fpr - roc[k - 1].fpr) * (roc[k].tpr + roc[k - 1].tpr)) / 2;
    advantage = Math.max(advantage, roc[k].tpr - roc[k].fpr);
  }
  return {
    auc,
    advantage,
    tprAt0001: tprAtFprFromRoc(roc, 0.001, rule),
    tprAt001: tprAtFprFromRoc(roc, 0.01, rule),
    members: memberScores.length,
    nonMembers: nonMemberScores.length,
    fprResolution: 1 / nonMemberScores.length,
    rule,
  };
}

/**
 * The largest TPR any membership test can have at this FPR against an (ε, δ)-DP mechanism (Kairouz et al.
 * 2015; the hypothesis-testing view of DP): with FNR = 1 − TPR, DP forces e^ε·FPR + FNR ≥ 1 − δ and
 * FPR + e^ε·FNR ≥ 1 − δ, i.e. TPR ≤ e^ε·FPR + δ and TPR ≤ 1 − e^(−ε)·(1 − δ − FPR); capped at 1.
 * An attack whose measured TPR clearly exceeds this at the same FPR contradicts the claimed guarantee (but
 * a single measured point carries sampling error; use the one-run audit for a statistically valid test).
 */
export function dpTprBound(epsilon: number, delta: number, fpr: number): number {
  if (!(epsilon >= 0)) throw new TayguardError('ARGUMENT_INVALID', `epsilon must be ≥ 0 (Infinity allowed), got ${String(epsilon)}`);
  if (!(delta >= 0 && delta <= 1)) throw new TayguardError('ARGUMENT_INVALID', `delta must be in [0, 1], got ${String(delta)}`);
  checkFpr(fpr);
  if (epsilon === Infinity) return fpr > 0 || delta > 0 ? 1 : 0;
  const a = Math.exp(epsilon) * fpr + delta;
  const b = 1 - Math.exp(-epsilon) * (1 - delta - fpr);
  return Math.min(1, a, Math.max(0, b));
}

/** The trade-off bound at the two headline FPRs (0.1% and 1%). */
export function dpTprBounds(epsilon: number, delta: number): { tprAt0001: number; tprAt001: number } {
  return { tprAt0001: dpTprBound(epsilon, delta, 0.001), tprAt001: dpTprBound(epsilon, delta, 0.01) };
}
