/**
 * Conversion from Rényi DP to (epsilon, delta)-DP.
 *
 * Balle, Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis Testing Interpretations and Rényi Differential
 * Privacy", Thm. 21 (arXiv:1905.09982): a mechanism that is (alpha, r)-RDP is (eps, delta)-DP with
 *   eps = r + log((alpha - 1)/alpha) - (log delta + log alpha)/(alpha - 1).
 * This is tighter than Mironov 2017 Prop. 3 (r + log(1/delta)/(alpha - 1)) and is what Opacus 1.5.4's
 * get_privacy_spent evaluates; the best bound is the minimum over the orders tracked.
 */
import { TayguardError } from '../../core/errors';
import { checkDelta } from './types';

export interface RdpConversion {
  readonly epsilon: number;
  /** Order with the smallest bound (first one on ties, as numpy's nanargmin); null if nothing was spent. */
  readonly order: number | null;
}

export function rdpToEpsilon(orders: readonly number[], rdp: ArrayLike<number>, delta: number): RdpConversion {
  checkDelta(delta);
  if (orders.length !== rdp.length || orders.length === 0) {
    throw new TayguardError('ARGUMENT_INVALID', `orders (${orders.length}) and rdp (${rdp.length}) must be non-empty and of equal length`);
  }
  // A history with no privacy loss at any order (empty, or only q = 0 steps) is (0, 0)-DP; the Thm. 21
  // bound would still report ~0.1 from its delta/order terms, which is not what anyone wants to see.
  let spent = false;
  for (let i = 0; i < rdp.length; i++) if (rdp[i] !== 0) spent = true;
  if (!spent) return { epsilon: 0, order: null };

  const logDelta = Math.log(delta);
  let best = Infinity;
  let bestOrder = NaN;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i];
    const eps = rdp[i] - (logDelta + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (Number.isNaN(eps)) continue;
    if (eps < best || Number.isNaN(bestOrder)) {
      best = eps;
      bestOrder = a;
    }
  }
  if (Number.isNaN(bestOrder)) return { epsilon: Infinity, order: null };
  // eps < 0 can only come from delta close to 1; any eps-DP bound implies (0, delta)-DP, so clamp.
  return { epsilon: Math.max(0, best), order: bestOrder };
}
