/** Lifetime outcome totals. Persisted in the checkpoint with the offsets they belong to, so they stay exact across crashes. */
import type { Metrics, Outcome } from './metrics';

export interface OutcomeCounts {
  trained: number;
  quarantined: number;
  skipped: number;
  quarantineReasons: Record<string, number>;
  /** Quarantined records by the stage that stopped them (the first reason's stage). */
  quarantineStages: Record<string, number>;
  skipReasons: Record<string, number>;
}

export const emptyCounts = (): OutcomeCounts => ({ trained: 0, quarantined: 0, skipped: 0, quarantineReasons: {}, quarantineStages: {}, skipReasons: {} });

export class OutcomeTally {
  readonly counts: OutcomeCounts;

  constructor(
    private readonly metrics: Metrics,
    restored?: OutcomeCounts,
  ) {
    this.counts = { ...emptyCounts(), ...structuredClone(restored ?? {}) };
    for (const outcome of ['trained', 'quarantined', 'skipped'] as const) metrics.records.inc({ outcome }, this.counts[outcome]);
    for (const [reason, n] of Object.entries(this.counts.quarantineReasons)) metrics.quarantined.inc({ reason }, n);
    for (const [reason, n] of Object.entries(this.counts.skipReasons)) metrics.skipped.inc({ reason }, n);
  }

  add(outcome: Outcome, reasons: readonly string[] = [], stage?: string): void {
    this.counts[outcome] += 1;
    if (stage !== undefined) this.counts.quarantineStages[stage] = (this.counts.quarantineStages[stage] ?? 0) + 1;
    this.metrics.records.inc({ outcome });
    const table = outcome === 'quarantined' ? this.counts.quarantineReasons : outcome === 'skipped' ? this.counts.skipReasons : undefined;
    const counter = outcome === 'quarantined' ? this.metrics.quarantined : this.metrics.skipped;
    if (table === undefined) return;
    for (const r of new Set(reasons)) {
      table[r] = (table[r] ?? 0) + 1;
      counter.inc({ reason: r });
    }
  }

  get total(): number {
    return this.counts.trained + this.counts.quarantined + this.counts.skipped;
  }
}
