/**
 * One training step as a stage chain: [...stages (privatize, later the update gate)] → update.
 * The update applies `ctx.gradients` when a privatize stage set them, else takes a plain SGD step.
 *
 * `padding` rows (DP only) are the sampled slots of messages that were not trained (malformed, quarantined,
 * duplicate, refused): a blank input with an all-zero one-hot label, whose cross-entropy gradient
 * softmax(z)·Σy − y is exactly zero. They make the step's tensors — and so its cost — a function of the
 * sampled slots only, not of which of them hold records (docs/privacy.md, "what a step reveals").
 */
import { compose, type Stage } from '../../middleware/chain';
import type { Learner } from '../../middleware/learner';
import type { Metrics } from '../metrics';
import type { TrainingRecord } from '../record';
import type { tf } from '../tf';
import type { Payload } from '../../middleware/featurize';

export interface StepContext {
  readonly records: readonly TrainingRecord[];
  /** Rows after `records` that are zero-contribution padding (see the file comment). */
  readonly padding: number;
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
  const blank: Payload = learner.featurizer.kind === 'text' ? { text: '' } : { features: new Array<number>(learner.featurizer.dim).fill(0) };
  return async function step(records: readonly TrainingRecord[], padding = 0): Promise<StepContext> {
    const end = metrics.stepSeconds.startTimer();
    const payloads: Payload[] = padding === 0 ? [...records] : [...records, ...new Array<Payload>(padding).fill(blank)];
    // Label −1 one-hot encodes to an all-zero row: the padding rows' gradient is exactly zero.
    const labels = padding === 0 ? records.map((r) => r.label) : [...records.map((r) => r.label), ...new Array<number>(padding).fill(-1)];
    const { x, y } = learner.batch(payloads, labels);
    const ctx: StepContext = { records, padding, x, y, applied: false };
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
