import type { RawMessage, TrainingRecord } from '../core/record';

/** Why a record was held back. `stage` names the detector; `code` is stable and is a metric label. */
export interface Reason {
  readonly stage: string;
  readonly code: string;
  readonly message: string;
  readonly score?: number;
  readonly threshold?: number;
}

export type Verdict = { readonly kind: 'accept' } | { readonly kind: 'quarantine'; readonly reasons: readonly Reason[] };

/**
 * A screening stage. `scope` is part of the privacy contract (docs/architecture.md invariant 4): a stage that looks
 * across records can change which records are trained on, so the budget status lists it.
 */
export interface Detector {
  readonly name: string;
  readonly scope: 'record' | 'cross-record';
  screen(record: TrainingRecord, raw: RawMessage): Verdict;
}

export const ACCEPT: Verdict = Object.freeze({ kind: 'accept' });
