/**
 * Inverse accounting: the smallest noise multiplier (to the bisection's resolution) that keeps epsilon
 * under a target after a fixed number of steps.
 *
 * Reproduces Opacus 1.5.4 `get_noise_multiplier` step for step, so a sigma chosen here equals the one a
 * PyTorch user of the same settings gets: double sigma from 10 until epsilon drops below the target, then
 * bisect [0, sigma_high] until the epsilon at sigma_high is within `epsilonTolerance` of the target. The
 * answer is always on the safe side (its epsilon is below the target).
 */
import { TayguardError } from '../../core/errors';
import { DEFAULT_EPS_ERROR, prvEpsilon, prvEpsilonBounds } from './prv';
import { rdpEpsilon } from './rdp';
import { AccountantKind, checkDelta, checkSampleRate, checkSteps } from './types';

/** Opacus MAX_SIGMA: past this the budget is unreachable for any practical purpose. */
export const MAX_NOISE_MULTIPLIER = 1e6;

export interface NoiseMultiplierQuery {
  readonly targetEpsilon: number;
  readonly delta: number;
  readonly sampleRate: number;
  readonly steps: number;
  readonly accountant?: AccountantKind;
  /** Stop once target - epsilon(sigma) <= this; Opacus default 0.01. */
  readonly epsilonTolerance?: number;
  /** PRV accuracy knob, passed to the PRV accountant only. */
  readonly epsError?: number;
}

export function getNoiseMultiplier(query: NoiseMultiplierQuery): number {
  const { targetEpsilon, delta, sampleRate, steps, accountant = 'rdp', epsilonTolerance = 0.01, epsError = DEFAULT_EPS_ERROR } = query;
  if (typeof targetEpsilon !== 'number' || !Number.isFinite(targetEpsilon) || targetEpsilon <= 0) {
    throw new TayguardError('ARGUMENT_INVALID', `target epsilon must be a finite number > 0, got ${String(targetEpsilon)}`);
  }
  if (typeof epsilonTolerance !== 'number' || !Number.isFinite(epsilonTolerance) || epsilonTolerance <= 0) {
    throw new TayguardError('ARGUMENT_INVALID', `epsilon tolerance must be a finite number > 0, got ${String(epsilonTolerance)}`);
  }
  if (accountant !== 'rdp' && accountant !== 'prv') {
    throw new TayguardError('ARGUMENT_INVALID', `accountant must be 'rdp' or 'prv', got ${String(accountant)}`);
  }
  checkDelta(delta);
  checkSampleRate(sampleRate);
  checkSteps(steps);
  if (sampleRate === 0) {
    throw new TayguardError('ARGUMENT_INVALID', 'sample rate 0 spends no privacy, so no noise multiplier is implied; use a rate in (0, 1]');
  }

  const epsilonAt = (sigma: number): number => {
    const history = [{ sampleRate, noiseMultiplier: sigma, steps }];
    if (accountant === 'rdp') return rdpEpsilon(history, delta).epsilon;
    // The loop only asks two questions of ε(σ): is it below the target, and is it more than the tolerance
    // below? A coarse PRV pass (10× smaller grid) brackets the true ε in [lower, upper], and the fine
    // estimate lies in [true, true + epsError] ⊂ [lower, upper + epsError]. When that interval answers both
    // questions the same way throughout, return a value from it that answers them identically and skip the
    // fine pass: same decisions, same σ, roughly a third of the time.
    const coarse = prvEpsilonBounds(history, delta, Math.max(epsError, 0.1));
    if (coarse.lower > targetEpsilon) return coarse.lower;
    const highest = coarse.upper + epsError;
    if (targetEpsilon - highest > epsilonTolerance) return highest;
    return prvEpsilon(history, delta, epsError).epsilon;
  };

  let epsHigh = Infinity;
  let sigmaLow = 0;
  let sigmaHigh = 10;
  while (epsHigh > targetEpsilon) {
    sigmaHigh *= 2;
    epsHigh = epsilonAt(sigmaHigh);
    if (sigmaHigh > MAX_NOISE_MULTIPLIER) {
      throw new TayguardError('ARGUMENT_INVALID', `target epsilon ${targetEpsilon} is unreachable even with noise multiplier ${MAX_NOISE_MULTIPLIER}; raise the target, delta, or lower the sample rate or steps`);
    }
  }
  while (targetEpsilon - epsHigh > epsilonTolerance) {
    const sigma = (sigmaLow + sigmaHigh) / 2;
    const eps = epsilonAt(sigma);
    if (eps < targetEpsilon) {
      sigmaHigh = sigma;
      epsHigh = eps;
    } else {
      sigmaLow = sigma;
    }
  }
  return sigmaHigh;
}
