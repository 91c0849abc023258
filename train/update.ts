/**
 * The update stage, innermost in every step (train/step-order.ts): applies `ctx.gradients` when a privatize
 * stage set them, else takes a plain SGD step on the batch.
 */
import type { Learner } from '../middleware/learner';
import type { StepStage } from './step';

export function updateStage(learner: Learner): StepStage {
  return {
    name: 'update',
    handle: (ctx) => {
      if (ctx.gradients) learner.applyGradients(ctx.gradients);
      else ctx.loss = learner.sgdStep(ctx.x, ctx.y);
      ctx.applied = true;
    },
  };
}
