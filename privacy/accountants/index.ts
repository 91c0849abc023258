/**
 * Privacy accountants for DP-SGD (the Poisson-subsampled Gaussian mechanism): RDP (Mironov et al. 2019)
 * and PRV (Gopi et al. 2021), the RDP-to-(eps, delta) conversion, and the inverse (noise for a budget).
 */
import { TayguardError } from '../../core/errors';
import { PrvAccountant } from './prv';
import { RdpAccountant } from './rdp';
import type { Accountant, AccountantKind } from './types';

export type { Accountant, AccountantKind, AccountantState, EpsilonResult, Segment } from './types';
export { rdpToEpsilon } from './convert';
export type { RdpConversion } from './convert';
export { DEFAULT_ORDERS, RdpAccountant, computeRdp, historyRdp, rdpEpsilon, rdpSampledGaussian } from './rdp';
export { DEFAULT_EPS_ERROR, MAX_GRID_SIZE, PrvAccountant, prvEpsilon, prvEpsilonBounds } from './prv';
export type { PrvBounds } from './prv';
export { MAX_NOISE_MULTIPLIER, getNoiseMultiplier } from './noise-multiplier';
export type { NoiseMultiplierQuery } from './noise-multiplier';

export function createAccountant(kind: AccountantKind): Accountant {
  if (kind === 'rdp') return new RdpAccountant();
  if (kind === 'prv') return new PrvAccountant();
  throw new TayguardError('ARGUMENT_INVALID', `accountant must be 'rdp' or 'prv', got ${String(kind)}`);
}

/** Restore an accountant from its toJSON() state, whichever kind it is. */
export function accountantFromJSON(state: unknown): Accountant {
  const kind = (state as { kind?: unknown } | null)?.kind;
  if (kind === 'rdp') return RdpAccountant.fromJSON(state);
  if (kind === 'prv') return PrvAccountant.fromJSON(state);
  throw new TayguardError('CHECKPOINT_CORRUPT', `accountant state has unknown kind ${String(kind)}; restore an older checkpoint`);
}

/**
 * Epsilon after one more step with (q, sigma), without touching the accountant: call before each step and
 * stop training when this exceeds the budget, so the budget is never overshot.
 */
export function epsilonAfterStep(accountant: Accountant, sampleRate: number, noiseMultiplier: number, delta: number, epsError?: number) {
  return accountant.epsilonAfter(sampleRate, noiseMultiplier, delta, 1, epsError);
}
