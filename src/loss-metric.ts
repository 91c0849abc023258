/**
 * tayguard_training_loss under DP (issue 14: it sat at 0). A DP step never computes the loss of its batch — that
 * number would be a non-private statistic of the training records — so the plain-mode gauge had nothing to show.
 * Under DP the metric is instead the canary loss: the mean loss of the trained model on the trusted canary set
 * (CANARY_FILE), which costs no privacy, stated as such in its help text. Under DP without a canary set there is
 * no honest value, and the metric is not exported at all rather than exported as a misleading 0.
 */
import { Gauge } from 'prom-client';
import type { Metrics } from './metrics';

export function describeTrainingLoss(metrics: Metrics, mode: 'plain' | 'dp', hasCanaries: boolean): void {
  if (mode === 'plain') return;
  metrics.registry.removeSingleMetric('tayguard_training_loss');
  if (!hasCanaries) return;
  const canary = metrics.canaryLoss;
  new Gauge({
    name: 'tayguard_training_loss',
    help: 'DP mode: the loss on the trusted canary set (CANARY_FILE) at the last checkpoint, not on training records (whose loss would not be private); same as tayguard_canary_loss',
    registers: [metrics.registry],
    async collect() {
      const value = (await canary.get()).values[0]?.value;
      if (value !== undefined) this.set(value);
    },
  });
}
