/**
 * What an attack family builds for one parameter setting and one seed: the attacker's records (a plan for
 * stream.ts), how to score the attack on a served model, and which of the targets apply. Plus the
 * scorers the families share.
 */
import type { Config } from '../../src/config';
import type { Dataset } from './data';
import type { Scorer } from './harness';
import type { AttackPlan, Example, Payload, Timeline } from './stream';

export type Params = Readonly<Record<string, number | string>>;

export interface Scenario {
  readonly family: string;
  readonly params: Params;
  readonly plan: AttackPlan;
  readonly timeline?: Timeline;
  /** The attacker queries POST /v1/predict. */
  readonly http?: boolean;
  /** Attack success on the served model (null: the family's goal is not a misclassification). */
  readonly attackSuccess?: Scorer;
  /** Attack success is the share of the poison records admitted (the abuse screens' job). */
  readonly successIsAdmission?: boolean;
  /** What attack success means, for the report. */
  readonly success: string;
  /** The backdoor target (≤ 10% success) applies. */
  readonly backdoor?: boolean;
  /** Counters the attacker keeps while sending (oracle queries, thresholds reached). */
  readonly attacker?: Record<string, number>;
}

export interface Context {
  readonly data: Dataset;
  /** This seed's clean examples, in stream order. */
  readonly clean: readonly Example[];
  readonly seed: string;
  /** The configuration the runs use (hash width, trust bounds, MAX_TEXT_CHARS). */
  readonly config: Config;
}

export type Family = (ctx: Context, params: Params) => Scenario;

export const num = (p: Params, k: string): number => {
  const v = p[k];
  if (typeof v !== 'number') throw new Error(`parameter ${k} must be a number (got ${JSON.stringify(v)})`);
  return v;
};
export const str = (p: Params, k: string): string => String(p[k]);

const argmax = (p: readonly number[]) => p.indexOf(Math.max(...p));

/** Share of `inputs` the served model labels `target` (a targeted misclassification rate). */
export function labelledAs(inputs: readonly Payload[], target: number): Scorer {
  return (predict) => {
    if (inputs.length === 0) return null;
    const probs = predict(inputs);
    return probs.filter((p) => argmax(p) === target).length / inputs.length;
  };
}

/**
 * Backdoor success (the usual attack success rate): of the held-out inputs not of the target class that the
 * model classifies correctly WITHOUT the trigger, the share it classifies as the target WITH it. Conditioning on
 * the clean prediction keeps the model's ordinary errors out of the figure.
 */
export function backdoorSuccess(inputs: readonly Example[], trigger: (e: Example) => Payload, target: number): Scorer {
  const candidates = inputs.filter((e) => e.label !== target);
  const triggered = candidates.map(trigger);
  return (predict) => {
    const clean = predict(candidates);
    const trig = predict(triggered);
    let n = 0;
    let hit = 0;
    clean.forEach((p, i) => {
      if (argmax(p) !== candidates[i].label) return;
      n += 1;
      if (argmax(trig[i]) === target) hit += 1;
    });
    return n === 0 ? null : hit / n;
  };
}
