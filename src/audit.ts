/**
 * The continuous membership-inference audit (Steinke, Nasr, Jagielski 2023, "Privacy auditing with one (1)
 * training run"): each round draws m canaries — random out-of-distribution texts with random labels, under a
 * reserved source — and includes each in training with probability ½ by a secret crypto coin. Once every
 * included canary has had its full exposure (its DP window, or a checkpoint in plain mode), the published model
 * scores all m canaries (loss attack, Yeom et al. 2018), the one-run audit turns correct guesses into an ε lower
 * bound at 95% confidence, and that bound is set beside the accountant's ε. A bound above the accountant's ε can
 * only come from a bug in clipping, noise, sampling or accounting: that raises the alarm.
 *
 * Canaries never count in user-facing outcome totals. Their coins and texts live in the checkpoint (needed to
 * finish the round after a restart), never in the published model directory.
 */
import { randomBytes } from 'node:crypto';
import { drawCanaryMembership, miaMetrics, oneRunAudit, dpTprBounds } from '../privacy/audit';
import type { Learner } from '../middleware/learner';
import type { TrainingRecord } from './record';

export const AUDIT_SOURCE = '__tayguard_audit__';

/**
 * Each round's bound holds at 95% confidence, so a correct implementation still sees a bound above ε in about
 * one round in twenty: alarming on one round would cry wolf every ~20 rounds. Rounds draw fresh canaries and
 * fresh coins, so each round's test is valid given every earlier one, and two in a row happen with probability
 * ≤ 0.05² = 0.25% per pair of rounds when all is right; a real bug that makes the bound exceed ε keeps doing so.
 */
export const ALARM_RULE = 'alarm when the lower bound exceeds the accountant\'s ε in two consecutive rounds (false-alarm probability ≤ 0.25% per pair of rounds; each round alone would be 5%)';

export interface AuditResult {
  readonly method: 'one-run (Steinke, Nasr, Jagielski 2023) with a loss-threshold attack';
  readonly round: number;
  readonly canaries: number;
  readonly included: number;
  readonly guesses: number;
  readonly correct: number;
  readonly confidence: number;
  readonly epsilonLowerBound: number;
  readonly epsilonAccounted: number | null;
  readonly delta: number;
  readonly auc: number;
  readonly tprAtFpr: { readonly '0.001': number; readonly '0.01': number };
  /** TPR ≤ e^ε·FPR + δ at the accounted ε: what DP allows at the same FPRs. */
  readonly dpTprBound: { readonly '0.001': number; readonly '0.01': number } | null;
  /** This round's lower bound is above the accountant's ε (probability ≤ β = 5% per round when all is right). */
  readonly exceeds: boolean;
  /** `exceeds` in this round AND the one before: the alarm (ALARM_RULE). */
  readonly alarm: boolean;
  readonly completedAt: string;
}

interface Round {
  round: number;
  canaries: TrainingRecord[];
  included: number[];
  /** Index into the included list of the next canary to admit. */
  next: number;
  /** Training progress (steps, or checkpoints in plain mode) when the last included canary was admitted. */
  lastAdmittedAt: number | null;
}

export interface AuditState {
  readonly version: 1;
  readonly round: Round | null;
  readonly results: AuditResult[];
}

export interface AuditorOptions {
  readonly canaries: number;
  /** Admit one canary per this many user records admitted. */
  readonly every: number;
  readonly numClasses: number;
  /** What the model reads: canaries are random texts for `text`, random feature vectors for `dense`. */
  readonly task: 'text' | 'dense';
  readonly featureDim: number;
  readonly delta: number;
  /** Steps (DP) or checkpoints (plain) after the last canary's admission before the round can be scored. */
  readonly exposure: number;
}

function canaryText(): string {
  // Eight random 40-bit tokens: a text no real record shares, so its only influence on the model is its own.
  return Array.from({ length: 8 }, () => `zz${randomBytes(5).toString('hex')}`).join(' ');
}

function canaryFeatures(dim: number): number[] {
  // A random sign vector scaled to norm 10: far from ordinary inputs in a random direction.
  const bytes = randomBytes(dim);
  const scale = 10 / Math.sqrt(dim);
  return Array.from(bytes, (b) => (b & 1 ? scale : -scale));
}

export class Auditor {
  private round: Round | null = null;
  private readonly results: AuditResult[] = [];
  private sinceCanary = 0;

  constructor(
    private readonly o: AuditorOptions,
    restored?: AuditState,
  ) {
    if (restored) {
      this.round = restored.round;
      this.results.push(...restored.results);
    }
  }

  private newRound(): Round {
    const membership = drawCanaryMembership(this.o.canaries);
    const n = (this.results.at(-1)?.round ?? this.round?.round ?? 0) + 1;
    const canaries = Array.from({ length: this.o.canaries }, (_, i) => ({
      id: `${AUDIT_SOURCE}/${n}/${i}`,
      // Each canary its own reserved source: in source mode the per-source cap k then never refuses an included
      // canary, and a canary's ε is exactly a source's ε.
      source: `${AUDIT_SOURCE}/${n}/${i}`,
      label: randomBytes(4).readUInt32BE() % this.o.numClasses,
      ...(this.o.task === 'text' ? { text: canaryText() } : { features: canaryFeatures(this.o.featureDim) }),
    }));
    const included = [...membership.included.keys()].filter((i) => membership.included[i] === 1);
    return { round: n, canaries, included, next: 0, lastAdmittedAt: null };
  }

  /** Called for every consumed user message; returns a canary to admit now, if one is due. */
  canaryDue(progress: number): TrainingRecord | undefined {
    this.round ??= this.newRound();
    const r = this.round;
    if (r.next >= r.included.length) return undefined;
    this.sinceCanary += 1;
    if (this.sinceCanary < this.o.every) return undefined;
    this.sinceCanary = 0;
    const canary = r.canaries[r.included[r.next]];
    r.next += 1;
    if (r.next === r.included.length) r.lastAdmittedAt = progress;
    return canary;
  }

  /**
   * At a checkpoint, with the published (checkpointed) model: score the round if every included canary has had
   * its exposure. Returns the result when a round completed.
   */
  maybeScore(progress: number, serving: Learner, epsilonAccounted: number | null): AuditResult | undefined {
    const r = this.round;
    if (!r || r.lastAdmittedAt === null || progress - r.lastAdmittedAt < this.o.exposure) return undefined;
    const probs = serving.predict(r.canaries);
    // Loss-threshold attack: a lower loss on a canary means "it was trained on".
    const scores = r.canaries.map((c, i) => Math.log(Math.max(probs[i][c.label], 1e-12)));
    const isIn = new Uint8Array(r.canaries.length);
    for (const i of r.included) isIn[i] = 1;
    const audit = oneRunAudit(scores, isIn, { delta: this.o.delta, beta: 0.05 });
    const members = scores.filter((_, i) => isIn[i] === 1);
    const nonMembers = scores.filter((_, i) => isIn[i] === 0);
    const mia = members.length > 0 && nonMembers.length > 0 ? miaMetrics(members, nonMembers) : undefined;
    const bound = epsilonAccounted === null ? null : dpTprBounds(epsilonAccounted, this.o.delta);
    const result: AuditResult = {
      method: 'one-run (Steinke, Nasr, Jagielski 2023) with a loss-threshold attack',
      round: r.round,
      canaries: r.canaries.length,
      included: r.included.length,
      guesses: audit.best.guesses,
      correct: audit.best.correct,
      confidence: 1 - audit.beta,
      epsilonLowerBound: audit.epsilonLowerBound,
      epsilonAccounted,
      delta: this.o.delta,
      auc: mia?.auc ?? 0.5,
      tprAtFpr: { '0.001': mia?.tprAt0001 ?? 0, '0.01': mia?.tprAt001 ?? 0 },
      dpTprBound: bound ? { '0.001': bound.tprAt0001, '0.01': bound.tprAt001 } : null,
      exceeds: epsilonAccounted !== null && audit.epsilonLowerBound > epsilonAccounted,
      alarm: epsilonAccounted !== null && audit.epsilonLowerBound > epsilonAccounted && this.results.at(-1)?.exceeds === true,
      completedAt: new Date().toISOString(),
    };
    this.results.push(result);
    if (this.results.length > 20) this.results.shift();
    // A fresh round with fresh coins: re-using canaries across audits would be multiple testing.
    this.round = null;
    return result;
  }

  latest(): AuditResult | undefined {
    return this.results.at(-1);
  }

  status() {
    const r = this.round;
    return {
      enabled: true,
      alarmRule: ALARM_RULE,
      current: r ? { round: r.round, canaries: r.canaries.length, admitted: r.next, toAdmit: r.included.length - r.next } : null,
      latest: this.latest() ?? null,
      history: this.results.map((x) => ({ round: x.round, epsilonLowerBound: x.epsilonLowerBound, epsilonAccounted: x.epsilonAccounted, exceeds: x.exceeds, alarm: x.alarm, completedAt: x.completedAt })),
    };
  }

  toJSON(): AuditState {
    return { version: 1, round: this.round, results: [...this.results] };
  }
}
