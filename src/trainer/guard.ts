/**
 * The numeric guard around every training update (issue 14). It sits innermost among the step stages, right
 * around privatize → update, so that the update gate and the weight average only ever see finite weights:
 *   - the weights are snapshotted before the update;
 *   - an error from clipping/privatizing/updating, or any non-finite weight afterwards, restores that snapshot
 *     (the step becomes a no-op: `applied = false`), counts it, and raises an alert naming the culprit rows
 *     when they are identifiable (a non-finite or out-of-range input);
 *   - the error is not rethrown: one poisoned batch must never stop the consumer.
 * Under DP the step was still charged by the trainer (conservative: charging a step that released nothing).
 */
import { Counter } from 'prom-client';
import type { Learner } from '../../middleware/learner';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { tf } from '../tf';
import type { StepStage } from './step';

export interface StepAlert {
  readonly at: string;
  readonly reason: 'step_error' | 'non_finite_weights';
  readonly message: string;
  /** Ids of the records whose inputs were non-finite or beyond MAX_FEATURE_ABS (empty when none stood out). */
  readonly culprits: readonly string[];
  readonly records: number;
}

const ALERTS_KEPT = 20;

export class StepGuard {
  rollbacks = 0;
  readonly alerts: StepAlert[] = [];
  private readonly counter: Counter<'reason'>;

  constructor(
    private readonly learner: Learner,
    metrics: Metrics,
    private readonly logger: Logger,
    private readonly maxFeatureAbs: number,
  ) {
    const existing = metrics.registry.getSingleMetric('tayguard_step_rollbacks_total') as Counter<'reason'> | undefined;
    this.counter =
      existing ??
      new Counter({ name: 'tayguard_step_rollbacks_total', help: 'Training steps undone by the numeric guard (an error in the step, or non-finite weights after it): an alert', labelNames: ['reason'] as const, registers: [metrics.registry] });
  }

  stage(): StepStage {
    return {
      name: 'numeric-guard',
      handle: async (ctx, next) => {
        const before = this.learner.snapshot();
        let failure: { reason: StepAlert['reason']; message: string } | undefined;
        try {
          await next();
          if (ctx.applied && !weightsFinite(this.learner)) failure = { reason: 'non_finite_weights', message: 'a weight became NaN or Infinity after the update' };
        } catch (e) {
          failure = { reason: 'step_error', message: (e as Error)?.message ?? String(e) };
        }
        if (!failure) return;
        this.learner.restore(before);
        ctx.applied = false;
        ctx.loss = undefined;
        this.rollbacks += 1;
        this.counter.inc({ reason: failure.reason });
        const alert: StepAlert = { at: new Date().toISOString(), ...failure, culprits: this.culprits(ctx.x, ctx.records.map((r) => r.id)), records: ctx.records.length };
        this.alerts.push(alert);
        if (this.alerts.length > ALERTS_KEPT) this.alerts.shift();
        this.logger.error({ alert }, 'ALERT: training step rolled back by the numeric guard (weights restored to before the step); see tayguard_step_rollbacks_total');
      },
    };
  }

  private culprits(x: tf.Tensor2D, ids: readonly string[]): string[] {
    if (ids.length === 0) return [];
    const peaks = tf.tidy(() => tf.max(tf.abs(x), 1).dataSync());
    const out: string[] = [];
    peaks.forEach((p, i) => {
      if (!Number.isFinite(p) || p > this.maxFeatureAbs) out.push(ids[i] ?? `row ${i}`);
    });
    return out;
  }
}

/** True when every weight of the model is finite. */
export function weightsFinite(learner: Pick<Learner, 'model'>): boolean {
  return learner.model.weights.every((w) => tf.tidy(() => tf.all(tf.isFinite(w.read())).dataSync()[0] === 1));
}
