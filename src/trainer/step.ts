/**
 * One training step as a stage chain: [...stages (privatize, later the update gate)] → update.
 * The update applies `ctx.gradients` when a privatize stage set them, else takes a plain SGD step.
 */
import { compose, type Stage } from '../../middleware/chain';
import type { Learner } from '../../middleware/learner';
import type { Metrics } from '../metrics';
import type { TrainingRecord } from '../record';
import type { tf } from '../tf';

export interface StepContext {
  readonly records: readonly TrainingRecord[];
  readonly x: tf.Tensor2D;
  readonly y: tf.Tensor2D;
  /** Set by a privatize stage: the gradients to apply instead of the plain minibatch gradient. */
  gradients?: tf.NamedTensorMap;
  loss?: number;
  applied: boolean;
}

export type StepStage = Stage<StepContext>;

export function createStepRunner(learner: Learner, metrics: Metrics, stages: readonly StepStage[] = []) {
  const update: StepStage = {
    name: 'update',
    handle: (ctx) => {
      if (ctx.gradients) learner.applyGradients(ctx.gradients);
      else ctx.loss = learner.sgdStep(ctx.x, ctx.y);
      ctx.applied = true;
    },
  };
  const run = compose([...stages, update]);
  return async function step(records: readonly TrainingRecord[]): Promise<StepContext> {
    const end = metrics.stepSeconds.startTimer();
    const { x, y } = learner.batch(records, records.map((r) => r.label));
    const ctx: StepContext = { records, x, y, applied: false };
    try {
      await run(ctx);
    } finally {
      x.dispose();
      y.dispose();
      if (ctx.gradients) for (const g of Object.values(ctx.gradients)) g.dispose();
      end();
    }
    metrics.steps.inc();
    if (ctx.loss !== undefined && Number.isFinite(ctx.loss)) metrics.loss.set(ctx.loss);
    return ctx;
  };
}
