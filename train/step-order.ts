/**
 * The step order, written once. Every training step runs these stages, outermost first:
 *
 *   average → gate → guard → privatize → update
 *
 *   average   (train/average.ts)   folds the step into the served moving average, once everything inside let it stand
 *   gate      (train/gate.ts)      scores the candidate on the trusted canaries and undoes a step that hurt them;
 *                                  it only ever judges a step the numeric guard let stand
 *   guard     (train/guard.ts)     the numeric guard: restores the weights when privatize or update throws or leaves
 *                                  a non-finite weight (innermost of the service's stages, right around privatize)
 *   privatize (train/privatize.ts) DP only: per-example clipping + Gaussian noise → ctx.gradients
 *   update    (train/update.ts)    applies ctx.gradients, or a plain SGD step
 *
 * The service (src/sidecar.ts) builds the stages around the update with `aroundTheUpdate`; the trainer
 * (train/dp.ts, train/plain.ts) adds privatize and update with `stepChain`. Stages are composed like express
 * middleware (middleware/chain.ts): each runs the rest of the step with `next()` and may undo it afterwards.
 */
import type { StepStage } from './step';

/** The stage names in step order, outermost first (as `Stage.name`). */
export const STEP_ORDER = ['average', 'gate', 'numeric-guard', 'privatize', 'update'] as const;

export interface StagesAroundTheUpdate {
  readonly average?: StepStage;
  readonly gate?: StepStage;
  readonly guard?: StepStage;
}

const present = (stages: readonly (StepStage | undefined)[]): StepStage[] => stages.filter((s): s is StepStage => s !== undefined);

/** The service's stages around every step, in step order: average → gate → guard. */
export function aroundTheUpdate(s: StagesAroundTheUpdate): StepStage[] {
  return present([s.average, s.gate, s.guard]);
}

/** One whole step: the stages around the update (already in order), then privatize (DP only), then update. */
export function stepChain(around: readonly StepStage[], privatize: StepStage | undefined, update: StepStage): StepStage[] {
  return [...around, ...present([privatize, update])];
}
