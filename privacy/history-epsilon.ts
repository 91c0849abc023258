/**
 * ε of a run-length step history, by the ledger's decision accountant, cached.
 *
 * The budget ledger (privacy/budget.ts) asks for the ε of the same few histories over and over: in steady state
 * every window has the same history, and a PRV figure costs a convolution (Gopi, Lee, Wutschitz 2021), so without
 * the cache the default (PRV) accountant would redo one at every step. PRV refuses histories whose grid would be
 * too large; then the RDP bound (Mironov 2017; also a valid upper bound, only looser) is used and the reason is
 * kept in `note` for the status.
 */
import { TayguardError } from '../core/errors';
import { accountantFromJSON, prvEpsilon, rdpEpsilon, type AccountantKind, type Segment } from './accountants';
import { appendSteps, historyKey } from './segments';

export class HistoryEpsilon {
  private readonly cache = new Map<string, number>();
  /** Why the last PRV figure was not computed (the RDP bound was used instead); reset by the caller. */
  note: string | null = null;

  constructor(
    readonly kind: AccountantKind,
    readonly delta: number,
    readonly epsError: number,
  ) {}

  rdpOf(history: readonly Segment[]): number {
    return history.length === 0 ? 0 : this.cached(`rdp:${historyKey(history)}`, () => rdpEpsilon(history, this.delta).epsilon);
  }

  /** PRV ε, or null (with the reason in `note`) when the PRV accountant refuses the grid. */
  prvOf(history: readonly Segment[]): number | null {
    if (history.length === 0) return 0;
    const k = `prv:${historyKey(history)}`;
    const hit = this.cache.get(k);
    if (hit !== undefined) return hit;
    try {
      return this.cached(k, () => prvEpsilon(history, this.delta, this.epsError).epsilon);
    } catch (err) {
      if (!TayguardError.is(err) || err.code !== 'ARGUMENT_INVALID') throw err;
      this.note = `PRV not computed: ${err.message}`;
      return null;
    }
  }

  /** ε by the decision accountant. */
  epsilonOf(history: readonly Segment[]): number {
    return this.kind === 'prv' ? (this.prvOf(history) ?? this.rdpOf(history)) : this.rdpOf(history);
  }

  /** The accountant's look-ahead: ε of `history` plus `steps` more steps of (q, σ). */
  lookAhead(history: readonly Segment[], q: number, sigma: number, steps = 1): number {
    return this.cached(`after:${historyKey(history)}+${steps}x(${q},${sigma})`, () => this.lookAheadUncached(history, q, sigma, steps));
  }

  private lookAheadUncached(history: readonly Segment[], q: number, sigma: number, steps: number): number {
    const acc = accountantFromJSON({ kind: this.kind, version: 1, history });
    try {
      return acc.epsilonAfter(q, sigma, this.delta, steps, this.epsError).epsilon;
    } catch (err) {
      if (this.kind !== 'prv' || !TayguardError.is(err) || err.code !== 'ARGUMENT_INVALID') throw err;
      this.note = `PRV look-ahead refused, RDP bound used: ${err.message}`;
      const next = history.map((s) => ({ ...s }));
      appendSteps(next, q, sigma, steps);
      return this.rdpOf(next);
    }
  }

  /** Histories are immutable snapshots, so their ε can be cached. */
  private cached(k: string, compute: () => number): number {
    let eps = this.cache.get(k);
    if (eps === undefined) {
      eps = compute();
      if (this.cache.size > 1024) this.cache.clear();
      this.cache.set(k, eps);
    }
    return eps;
  }
}
