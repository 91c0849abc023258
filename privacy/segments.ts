/**
 * Run-length histories of DP-SGD steps ((q, σ) × steps), as the accountants and the budget ledger keep them.
 */
import type { Segment } from './accountants';

/** Append `steps` of (q, σ), merging into the last segment (as the accountants do). */
export function appendSteps(history: Segment[], q: number, sigma: number, steps: number): void {
  const last = history[history.length - 1];
  if (last && last.sampleRate === q && last.noiseMultiplier === sigma) {
    history[history.length - 1] = { ...last, steps: last.steps + steps };
  } else {
    history.push({ sampleRate: q, noiseMultiplier: sigma, steps });
  }
}

/** Keep only the last `w` steps of a run-length history. */
export function keepLastSteps(history: readonly Segment[], w: number): Segment[] {
  const out: Segment[] = [];
  let need = w;
  for (let i = history.length - 1; i >= 0 && need > 0; i--) {
    const s = history[i];
    const take = Math.min(s.steps, need);
    out.unshift({ ...s, steps: take });
    need -= take;
  }
  return out;
}

/** A cache key for a history (histories are compared by value). */
export const historyKey = (h: readonly Segment[]): string => JSON.stringify(h);

/** Probability that a source with ≤ k pooled records contributes to a step with per-record rate q. */
export function sourceSampleRate(q: number, k: number): number {
  return q >= 1 ? 1 : -Math.expm1(k * Math.log1p(-q));
}
