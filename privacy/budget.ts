/**
 * Privacy budget ledger: decides whether the next DP-SGD step may be taken, records it, and reports what has
 * been spent. It is part of the durable checkpoint (toJSON/fromJSON): a restart must never forget spending.
 *
 * What is charged, by mode:
 *  - unit 'record', no window (fixed dataset): every record is a candidate at every step, so the charge is the
 *    whole history of (q, σ) steps — the accountant's own history.
 *  - unit 'record', window W (StreamingPoissonSampler): a record is a candidate only during its W steps in the
 *    pool (privacy/sampler.ts), so its loss is the composition of the W steps of its window. The ledger charges
 *    the WORST window of W consecutive steps seen so far; every window is checked when its last step is about
 *    to be taken, so every record's exposure is covered whatever the schedule of (q, σ).
 *  - unit 'source', window W, at most k records per source in the window: all of a source's records in a batch
 *    are summed and clipped together (privateGradients `groups`), so a source changes ONE clipped summand of
 *    norm ≤ C — the same Gaussian mechanism as one record. The source's summand is present in a step with
 *    probability 1 − (1 − q)^m ≤ 1 − (1 − q)^k =: q_src (m ≤ k of its records in the pool, each with an
 *    independent q-coin), so each step in which the source had a record in the pool is charged as one
 *    q_src-subsampled Gaussian step (see docs/privacy.md for why a random subset is no worse than a fixed one).
 *    Each source has its own history; `spent` is the worst source's ε.
 *
 * Look-ahead: canStep() composes the charged history with ONE more step via the accountant's epsilonAfter and
 * refuses when the result would pass the limit, so ε never exceeds it. PRV refuses histories whose grid would
 * be too large; then the RDP bound (also a valid upper bound, only looser) is used and the reason is reported.
 */
import { TayguardError } from '../core/errors';
import { accountantFromJSON, createAccountant, DEFAULT_EPS_ERROR, type Accountant, type AccountantKind, type Segment } from './accountants';
import { HistoryEpsilon } from './history-epsilon';
import { appendSteps, historyKey, keepLastSteps, sourceSampleRate } from './segments';

export type PrivacyUnit = 'record' | 'source';

export interface StepPlan {
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
}

export interface BudgetOptions {
  readonly epsilonLimit: number;
  readonly delta: number;
  /** 'record' (default) or 'source'. */
  readonly unit?: PrivacyUnit;
  /** Accountant used for decisions ('rdp' default). */
  readonly accountant?: AccountantKind;
  /** Streaming window W (steps a record stays in the pool). Required for unit 'source'. */
  readonly window?: number;
  /** k: at most this many of a source's records in the pool at once. Required for unit 'source'. */
  readonly maxRecordsPerSource?: number;
  /** PRV accuracy (default 0.01). */
  readonly epsError?: number;
  /** (q, σ) the caller intends to use; sourceCanContribute() needs it before the first step. */
  readonly plan?: StepPlan;
}

export type SourceRefusal = 'source_budget_exhausted' | 'source_record_cap';

export interface SourceDecision {
  readonly ok: boolean;
  readonly reason: SourceRefusal | null;
  /** The source's ε if its record is admitted and the plan holds for the whole window. */
  readonly epsilonIfAdmitted: number;
  /** Records of this source currently in the window. */
  readonly activeRecords: number;
}

export interface BudgetStatus {
  readonly unit: PrivacyUnit;
  readonly accountant: AccountantKind;
  readonly epsilonLimit: number;
  readonly delta: number;
  readonly window: number | null;
  readonly maxRecordsPerSource: number | null;
  /** ε charged so far by the decision accountant (worst window / worst source as applicable). */
  readonly spent: number;
  /** `publicSpent`: the figure the public surface may show (schedule-only; see the getter). */
  readonly publicSpent: number;
  readonly remaining: number;
  /** True when one more step with the last (or planned) (q, σ) would pass the limit. */
  readonly exhausted: boolean;
  readonly epsilonRdp: number;
  /** PRV bound of the same charged history, or null when the PRV grid would be too large. */
  readonly epsilonPrv: number | null;
  readonly prvUnavailableReason: string | null;
  /** Steps recorded (all steps, whatever the mode). */
  readonly steps: number;
  /** unit 'source': sources with any history, and those with a record in the pool now. */
  readonly sources?: { readonly tracked: number; readonly present: number };
}

interface SourceEntry {
  history: Segment[];
  /** Step index at which each of the source's in-window records leaves the pool (exclusive). */
  expiries: number[];
}

export interface BudgetState {
  readonly version: 1;
  readonly options: {
    epsilonLimit: number;
    delta: number;
    unit: PrivacyUnit;
    accountant: AccountantKind;
    window: number | null;
    maxRecordsPerSource: number | null;
    epsError: number;
  };
  readonly steps: number;
  readonly accountantState: ReturnType<Accountant['toJSON']>;
  readonly recent: Segment[];
  readonly worst: Segment[];
  readonly sources: [string, SourceEntry][];
  readonly lastPlan: StepPlan | null;
  /** Absent in ledgers written before repairs existed (= 0). */
  readonly floor?: number;
  readonly repairPlan?: StepPlan;
}

const invalid = (m: string): TayguardError => new TayguardError('ARGUMENT_INVALID', m);

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw invalid(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

export { sourceSampleRate };

export class PrivacyBudget {
  readonly epsilonLimit: number;
  readonly delta: number;
  readonly unit: PrivacyUnit;
  readonly kind: AccountantKind;
  readonly window: number | undefined;
  readonly maxRecordsPerSource: number | undefined;
  private readonly epsError: number;
  private plan: StepPlan | undefined;
  /** All steps ever taken, at the per-record rate q. */
  private accountant: Accountant;
  private stepCount = 0;
  /** record + window: the last ≤ W steps. */
  private recent: Segment[] = [];
  /** The charged history with the largest ε so far (window or source modes). */
  private worst: Segment[] = [];
  private worstEpsilon = 0;
  private readonly sources = new Map<string, SourceEntry>();
  /** ε that `spent` never goes below: set by a checkpoint repair from the highest ε ever published. */
  private floor = 0;
  private readonly eps: HistoryEpsilon;

  constructor(opts: BudgetOptions) {
    const { epsilonLimit, delta } = opts;
    if (typeof epsilonLimit !== 'number' || !Number.isFinite(epsilonLimit) || epsilonLimit <= 0) {
      throw invalid(`epsilonLimit must be a finite number > 0, got ${String(epsilonLimit)}`);
    }
    if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw invalid(`delta must be in (0, 1), got ${String(delta)}`);
    this.epsilonLimit = epsilonLimit;
    this.delta = delta;
    this.unit = opts.unit ?? 'record';
    if (this.unit !== 'record' && this.unit !== 'source') throw invalid(`unit must be 'record' or 'source', got ${String(this.unit)}`);
    this.kind = opts.accountant ?? 'rdp';
    this.accountant = createAccountant(this.kind);
    this.epsError = opts.epsError ?? DEFAULT_EPS_ERROR;
    this.eps = new HistoryEpsilon(this.kind, this.delta, this.epsError);
    this.window = opts.window === undefined ? undefined : positiveInt('window', opts.window);
    if (this.unit === 'source') {
      if (this.window === undefined) {
        throw invalid("unit 'source' needs window (steps a record stays in the pool); for a fixed dataset use window = total steps");
      }
      this.maxRecordsPerSource = positiveInt('maxRecordsPerSource', opts.maxRecordsPerSource);
    } else {
      this.maxRecordsPerSource = undefined;
    }
    if (opts.plan) this.setPlan(opts.plan);
  }

  /** Set the (q, σ) used for source admission decisions. */
  setPlan(plan: StepPlan): void {
    checkStep(plan.sampleRate, plan.noiseMultiplier);
    this.plan = { sampleRate: plan.sampleRate, noiseMultiplier: plan.noiseMultiplier };
  }

  get steps(): number {
    return this.stepCount;
  }

  // ---- sources ---------------------------------------------------------------------------------------

  private presentSources(): SourceEntry[] {
    const out: SourceEntry[] = [];
    for (const e of this.sources.values()) if (e.expiries.some((x) => x > this.stepCount)) out.push(e);
    return out;
  }

  private sourceRate(q: number): number {
    return sourceSampleRate(q, this.maxRecordsPerSource as number);
  }

  /** Whether one more record of `source` may enter the pool now, and why not. */
  checkSource(source: string, plan: StepPlan | undefined = this.plan): SourceDecision {
    if (this.unit !== 'source') throw invalid("checkSource is for unit 'source'");
    if (plan === undefined) throw invalid('no (q, σ) plan yet: pass one, set options.plan, or call setPlan()');
    const entry = this.sources.get(source);
    const history = entry?.history ?? [];
    const active = entry ? entry.expiries.filter((x) => x > this.stepCount).length : 0;
    // Admitted now, the source is in the pool for exactly the next W steps (its other records leave no later),
    // so its history must afford W more steps — not only the ones past its current last expiry, which were
    // never charged yet either.
    const eps = this.eps.lookAhead(history, this.sourceRate(plan.sampleRate), plan.noiseMultiplier, this.window as number);
    if (active >= (this.maxRecordsPerSource as number)) {
      return { ok: false, reason: 'source_record_cap', epsilonIfAdmitted: eps, activeRecords: active };
    }
    if (eps > this.epsilonLimit) return { ok: false, reason: 'source_budget_exhausted', epsilonIfAdmitted: eps, activeRecords: active };
    return { ok: true, reason: null, epsilonIfAdmitted: eps, activeRecords: active };
  }

  sourceCanContribute(source: string, plan?: StepPlan): boolean {
    return this.checkSource(source, plan).ok;
  }

  /** Register one admitted record of `source` (call right before sampler.admit). Throws when refused. */
  admitSource(source: string, plan?: StepPlan): void {
    const d = this.checkSource(source, plan);
    if (!d.ok) {
      throw new TayguardError('BUDGET_EXHAUSTED', `source ${source} cannot contribute (${d.reason}); skip the record`);
    }
    let entry = this.sources.get(source);
    if (!entry) {
      entry = { history: [], expiries: [] };
      this.sources.set(source, entry);
    }
    entry.expiries.push(this.stepCount + (this.window as number));
  }

  /** Sources present in the pool whose own history cannot afford one more step of (q, σ). */
  unaffordableSources(sampleRate: number, noiseMultiplier: number): Set<string> {
    if (this.unit !== 'source') throw invalid("unaffordableSources is for unit 'source'");
    checkStep(sampleRate, noiseMultiplier);
    const out = new Set<string>();
    const rate = this.sourceRate(sampleRate);
    for (const [id, e] of this.sources) {
      if (e.expiries.some((x) => x > this.stepCount) && this.eps.lookAhead(e.history, rate, noiseMultiplier) > this.epsilonLimit) out.add(id);
    }
    return out;
  }

  /** The source's records have left the pool (dropped by the caller): no later step is charged to it. */
  dropSource(source: string): void {
    const entry = this.sources.get(source);
    if (entry) entry.expiries = [];
  }

  /** The source's own ε so far (0 for an unknown source). */
  sourceEpsilon(source: string): number {
    const entry = this.sources.get(source);
    return entry ? this.eps.epsilonOf(entry.history) : 0;
  }

  // ---- steps -----------------------------------------------------------------------------------------

  /** ε the charged history would reach after one more step with (q, σ). */
  epsilonAfterStep(sampleRate: number, noiseMultiplier: number): number {
    checkStep(sampleRate, noiseMultiplier);
    if (this.unit === 'source') {
      const rate = this.sourceRate(sampleRate);
      // Only the sources still present decide whether a step may run (a source that passed a lowered limit in
      // the past, and whose records were dropped, must not halt everyone: that halt would reveal it). `spent`
      // keeps the worst ever.
      let eps = 0;
      const seen = new Set<string>();
      for (const e of this.presentSources()) {
        const k = historyKey(e.history);
        if (seen.has(k)) continue;
        seen.add(k);
        eps = Math.max(eps, this.eps.lookAhead(e.history, rate, noiseMultiplier));
      }
      return eps;
    }
    if (this.window !== undefined) {
      return Math.max(this.worstEpsilon, this.floor, this.eps.lookAhead(keepLastSteps(this.recent, this.window - 1), sampleRate, noiseMultiplier));
    }
    return Math.max(this.floor, this.eps.lookAhead(this.accountant.history, sampleRate, noiseMultiplier));
  }

  /** Whether ONE more step with (q, σ) keeps ε ≤ the limit. */
  canStep(sampleRate: number, noiseMultiplier: number): boolean {
    return this.epsilonAfterStep(sampleRate, noiseMultiplier) <= this.epsilonLimit;
  }

  /** Record a step that was taken. Throws BUDGET_EXHAUSTED (recording nothing) if it would pass the limit. */
  recordStep(sampleRate: number, noiseMultiplier: number): void {
    if (!this.canStep(sampleRate, noiseMultiplier)) {
      throw new TayguardError(
        'BUDGET_EXHAUSTED',
        `a step with q=${sampleRate}, σ=${noiseMultiplier} would take ε past ${this.epsilonLimit} (δ=${this.delta}); stop training or raise σ`,
      );
    }
    this.accountant.step(sampleRate, noiseMultiplier);
    if (this.unit === 'source') {
      const rate = this.sourceRate(sampleRate);
      const updated = new Map<string, Segment[]>();
      for (const e of this.presentSources()) {
        appendSteps(e.history, rate, noiseMultiplier, 1);
        updated.set(historyKey(e.history), e.history);
      }
      for (const h of updated.values()) this.raiseWorst(h);
    } else if (this.window !== undefined) {
      appendSteps(this.recent, sampleRate, noiseMultiplier, 1);
      this.recent = keepLastSteps(this.recent, this.window);
      this.raiseWorst(this.recent);
    }
    this.stepCount += 1;
    this.plan ??= { sampleRate, noiseMultiplier };
    this.lastPlan = { sampleRate, noiseMultiplier };
    if (this.unit === 'source') this.prune();
  }

  private lastPlan: StepPlan | undefined;

  private raiseWorst(history: readonly Segment[]): void {
    const eps = this.eps.epsilonOf(history);
    if (eps > this.worstEpsilon) {
      this.worstEpsilon = eps;
      this.worst = history.map((s) => ({ ...s }));
    }
  }

  /** Drop expired window entries (the source's history stays: its ε is permanent). */
  private prune(): void {
    for (const e of this.sources.values()) {
      if (e.expiries.length > 0) e.expiries = e.expiries.filter((x) => x > this.stepCount);
    }
  }

  /** The history whose ε is `spent`. */
  private charged(): readonly Segment[] {
    return this.unit === 'record' && this.window === undefined ? this.accountant.history : this.worst;
  }

  get spent(): number {
    const charged = this.unit === 'record' && this.window === undefined ? this.eps.epsilonOf(this.accountant.history) : this.worstEpsilon;
    return Math.max(charged, this.floor);
  }

  /** Never report less than `epsilon` again (a repaired ledger must cover every version already published). */
  raiseFloor(epsilon: number): void {
    if (!Number.isFinite(epsilon) || epsilon < 0) throw invalid(`an ε floor must be a finite number ≥ 0, got ${String(epsilon)}`);
    this.floor = Math.max(this.floor, epsilon);
  }

  /**
   * Resuming from an older checkpoint after a newer one was lost: the records consumed between the two are
   * redelivered and pooled again, after up to W steps of the lost run already released them (in published
   * versions). Their exposure is then up to 2W steps, so charge it: the worst window twice over (record mode),
   * or W more steps of the last plan on every source's history (source mode: which sources were replayed is
   * not known, so all are charged).
   */
  chargeRepeatedExposure(lostPlans: readonly StepPlan[] = []): void {
    const w = this.window;
    if (w === undefined) throw invalid('chargeRepeatedExposure needs a streaming window');
    // The plan the lost run may have used: the costliest of this ledger's and those the lost versions declared
    // (a restart may change q and σ). A replayed record had up to W steps of it, and will have up to W more.
    const candidates = [this.lastPlan ?? this.plan, ...lostPlans].filter((p): p is StepPlan => p !== undefined);
    const costliest = candidates.reduce<StepPlan | undefined>(
      (a, p) => (a === undefined || this.eps.rdpOf([{ sampleRate: this.rateFor(p.sampleRate), noiseMultiplier: p.noiseMultiplier, steps: w }]) > this.eps.rdpOf([{ sampleRate: this.rateFor(a.sampleRate), noiseMultiplier: a.noiseMultiplier, steps: w }]) ? p : a),
      undefined,
    );
    this.repairPlan = costliest;
    if (this.unit === 'source') {
      const plan = costliest;
      if (!plan) return;
      for (const e of this.sources.values()) {
        appendSteps(e.history, this.sourceRate(plan.sampleRate), plan.noiseMultiplier, w);
        this.raiseWorst(e.history);
      }
      return;
    }
    const twice = [...this.worst, ...this.worst].reduce<Segment[]>((h, seg) => (appendSteps(h, seg.sampleRate, seg.noiseMultiplier, seg.steps), h), []);
    this.raiseWorst(twice);
    if (costliest) this.raiseWorst([{ ...costliest, steps: 2 * w }]);
  }

  /**
   * After a repair: the costliest plan the replayed records may have met. A restart with a costlier one would
   * give them more than what was charged, so the trainer refuses it (train/dp.ts).
   */
  repairPlan: StepPlan | undefined;

  private rateFor(q: number): number {
    return this.unit === 'source' ? this.sourceRate(q) : q;
  }

  /**
   * A figure that depends on the step schedule only, never on which sources sent what: in record mode the
   * charged window (already schedule-only); in source mode the ε of a source present in EVERY step so far,
   * capped at the limit every source is held to by admission. The worst source's exact ε (`spent`) depends on
   * the sources' traffic, so it is for the operator, not for the public surface.
   */
  get publicSpent(): number {
    if (this.unit !== 'source') return this.spent;
    const always: Segment[] = [];
    for (const seg of this.accountant.history) appendSteps(always, this.sourceRate(seg.sampleRate), seg.noiseMultiplier, seg.steps);
    return Math.min(this.epsilonLimit, Math.max(this.spent, this.eps.epsilonOf(always)));
  }

  status(): BudgetStatus {
    const charged = this.charged();
    const spent = this.spent;
    this.eps.note = null;
    const epsilonPrv = this.eps.prvOf(charged);
    const next = this.lastPlan ?? this.plan;
    const exhausted = spent >= this.epsilonLimit || (next !== undefined && !this.canStep(next.sampleRate, next.noiseMultiplier));
    const base: BudgetStatus = {
      unit: this.unit,
      accountant: this.kind,
      epsilonLimit: this.epsilonLimit,
      delta: this.delta,
      window: this.window ?? null,
      maxRecordsPerSource: this.maxRecordsPerSource ?? null,
      spent,
      publicSpent: this.publicSpent,
      remaining: Math.max(0, this.epsilonLimit - spent),
      exhausted,
      epsilonRdp: this.eps.rdpOf(charged),
      epsilonPrv,
      prvUnavailableReason: epsilonPrv === null ? this.eps.note : null,
      steps: this.stepCount,
    };
    if (this.unit !== 'source') return base;
    return { ...base, sources: { tracked: this.sources.size, present: this.presentSources().length } };
  }

  toJSON(): BudgetState {
    return {
      version: 1,
      options: {
        epsilonLimit: this.epsilonLimit,
        delta: this.delta,
        unit: this.unit,
        accountant: this.kind,
        window: this.window ?? null,
        maxRecordsPerSource: this.maxRecordsPerSource ?? null,
        epsError: this.epsError,
      },
      steps: this.stepCount,
      accountantState: this.accountant.toJSON(),
      recent: this.recent.map((s) => ({ ...s })),
      worst: this.worst.map((s) => ({ ...s })),
      sources: [...this.sources].map(([id, e]) => [id, { history: e.history.map((s) => ({ ...s })), expiries: [...e.expiries] }]),
      lastPlan: this.lastPlan ?? this.plan ?? null,
      ...(this.floor > 0 ? { floor: this.floor } : {}),
      ...(this.repairPlan ? { repairPlan: this.repairPlan } : {}),
    };
  }

  /**
   * Restore from toJSON(). `overrides` may tighten or loosen the limit and change the (q, σ) plan — the
   * history is kept either way, so ε never goes down; a limit below the ε already spent leaves the budget
   * exhausted. δ, unit, window and k cannot change: the recorded histories were computed under them.
   */
  static fromJSON(value: unknown, overrides: { epsilonLimit?: number; plan?: StepPlan } = {}): PrivacyBudget {
    const corrupt = (why: string): TayguardError =>
      new TayguardError('CHECKPOINT_CORRUPT', `budget state is not valid (${why}); restore an older checkpoint`);
    if (typeof value !== 'object' || value === null) throw corrupt('not an object');
    const s = value as Partial<BudgetState>;
    if (s.version !== 1) throw corrupt(`unsupported version ${String(s.version)}`);
    const o = s.options;
    if (!o) throw corrupt('no options');
    let b: PrivacyBudget;
    try {
      b = new PrivacyBudget({
        epsilonLimit: overrides.epsilonLimit ?? o.epsilonLimit,
        delta: o.delta,
        unit: o.unit,
        accountant: o.accountant,
        window: o.window ?? undefined,
        maxRecordsPerSource: o.maxRecordsPerSource ?? undefined,
        epsError: o.epsError,
        plan: overrides.plan ?? s.lastPlan ?? undefined,
      });
    } catch (err) {
      throw corrupt((err as Error).message);
    }
    // Histories go through the accountant's parser so that malformed segments are rejected.
    const segments = (h: unknown): Segment[] => [...accountantFromJSON({ kind: 'rdp', version: 1, history: h }).history];
    try {
      b.accountant = accountantFromJSON(s.accountantState);
      if (b.accountant.kind !== b.kind) throw corrupt(`accountant kind ${b.accountant.kind} ≠ ${b.kind}`);
      b.recent = segments(s.recent);
      b.worst = segments(s.worst);
      for (const [id, e] of s.sources ?? []) {
        if (typeof id !== 'string' || !Array.isArray(e?.expiries) || !e.expiries.every((x) => Number.isSafeInteger(x))) {
          throw corrupt(`source entry ${String(id)}`);
        }
        b.sources.set(id, { history: segments(e.history), expiries: [...e.expiries] });
      }
    } catch (err) {
      if (TayguardError.is(err) && err.code === 'CHECKPOINT_CORRUPT') throw corrupt(err.message);
      throw err;
    }
    if (!Number.isSafeInteger(s.steps) || (s.steps as number) < 0) throw corrupt(`steps is ${String(s.steps)}`);
    b.stepCount = s.steps as number;
    b.worstEpsilon = b.worst.length === 0 ? 0 : b.eps.epsilonOf(b.worst);
    if (s.floor !== undefined) {
      if (typeof s.floor !== 'number' || !Number.isFinite(s.floor) || s.floor < 0) throw corrupt(`floor is ${String(s.floor)}`);
      b.floor = s.floor;
    }
    if (s.repairPlan) b.repairPlan = { ...s.repairPlan };
    if (overrides.plan) b.lastPlan = { ...overrides.plan };
    else if (s.lastPlan) b.lastPlan = { ...s.lastPlan };
    return b;
  }
}

function checkStep(q: number, sigma: number): void {
  if (typeof q !== 'number' || !(q > 0 && q <= 1)) throw invalid(`sample rate must be in (0, 1], got ${String(q)}`);
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma <= 0) throw invalid(`noise multiplier must be > 0, got ${String(sigma)}`);
}
