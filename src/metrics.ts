/**
 * Prometheus metrics. One registry per sidecar (no global state, so tests can run several in one process).
 * Names and labels are part of the public contract (README "Metrics").
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Outcome = 'trained' | 'quarantined' | 'skipped';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tayguard_' });
  const m = {
    registry,
    records: new Counter({ name: 'tayguard_records_total', help: 'Records by final outcome (lifetime, restored from the checkpoint)', labelNames: ['outcome'] as const, registers: [registry] }),
    quarantined: new Counter({ name: 'tayguard_records_quarantined_total', help: 'Quarantine reasons (a record with several reasons counts under each)', labelNames: ['reason'] as const, registers: [registry] }),
    skipped: new Counter({ name: 'tayguard_records_skipped_total', help: 'Skipped records by reason', labelNames: ['reason'] as const, registers: [registry] }),
    sourceRecordsDropped: new Counter({ name: 'tayguard_source_records_dropped_total', help: 'Pooled records of sources that could no longer afford a step (source mode, after a restart with a costlier plan): dropped so that the other sources train on', registers: [registry] }),
    textCut: new Counter({ name: 'tayguard_text_cut_total', help: 'Records whose text was longer than TEXT_READ_CHARS and was cut to it (the model and the screens read the first TEXT_READ_CHARS characters)', registers: [registry] }),
    eventTimeClamped: new Counter({ name: 'tayguard_event_time_clamped_total', help: 'Records whose ts was further than MAX_CLOCK_SKEW_MS from their Kafka timestamp, clamped', registers: [registry] }),
    redeliveries: new Counter({ name: 'tayguard_redeliveries_total', help: 'Messages Kafka delivered again that were already handled (at or below the offset watermark); not new outcomes', registers: [registry] }),
    stepSeconds: new Histogram({ name: 'tayguard_step_duration_seconds', help: 'Wall time of one training step', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    checkpointSeconds: new Histogram({ name: 'tayguard_checkpoint_duration_seconds', help: 'Wall time to write a checkpoint and publish the model', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    checkpoints: new Counter({ name: 'tayguard_checkpoints_total', help: 'Checkpoints written by this process', registers: [registry] }),
    lag: new Gauge({ name: 'tayguard_consumer_lag', help: 'Messages behind the partition high watermark at the last fetched batch', labelNames: ['topic', 'partition'] as const, registers: [registry] }),
    loss: new Gauge({ name: 'tayguard_training_loss', help: 'Mean loss of the last training step', registers: [registry] }),
    modelVersion: new Gauge({ name: 'tayguard_model_version', help: 'Version number of the last published model', registers: [registry] }),
    epsilonSpent: new Gauge({ name: 'tayguard_privacy_epsilon_spent', help: 'ε spent (accountant in ACCOUNTANT), as of the last checkpoint', registers: [registry] }),
    epsilonLimit: new Gauge({ name: 'tayguard_privacy_epsilon_limit', help: 'Configured ε limit (EPSILON_LIMIT)', registers: [registry] }),
    epsilonRemaining: new Gauge({ name: 'tayguard_privacy_epsilon_remaining', help: 'ε limit minus ε spent', registers: [registry] }),
    budgetExhausted: new Gauge({ name: 'tayguard_privacy_budget_exhausted', help: '1 when the next step would pass the ε limit (training has stopped)', registers: [registry] }),
    dpSteps: new Gauge({ name: 'tayguard_privacy_steps', help: 'DP-SGD steps charged to the accountant', registers: [registry] }),
    gateRejected: new Counter({ name: 'tayguard_gate_rejected_updates_total', help: 'Updates the canary gate undid (RONI)', registers: [registry] }),
    gateRollbacks: new Counter({ name: 'tayguard_gate_rollbacks_total', help: 'Automatic rollbacks to the best checkpoint after sustained canary degradation (an alert)', registers: [registry] }),
    canaryAccuracy: new Gauge({ name: 'tayguard_canary_accuracy', help: 'Accuracy of the served model on the trusted canary set at the last checkpoint', registers: [registry] }),
    canaryLoss: new Gauge({ name: 'tayguard_canary_loss', help: 'Mean loss on the trusted canary set at the last checkpoint', registers: [registry] }),
    auditLowerBound: new Gauge({ name: 'tayguard_audit_epsilon_lower_bound', help: 'Empirical ε lower bound of the last one-run audit (95% confidence)', registers: [registry] }),
    auditAlarm: new Gauge({ name: 'tayguard_audit_alarm', help: '1 when the audit\'s ε lower bound exceeded the accountant\'s ε (a bug in clipping, noise, sampling or accounting)', registers: [registry] }),
    auditRounds: new Counter({ name: 'tayguard_audit_rounds_total', help: 'Completed audit rounds', registers: [registry] }),
    steps: new Counter({ name: 'tayguard_training_steps_total', help: 'Training steps taken by this process', registers: [registry] }),
    screenStateBytes: new Gauge({ name: 'tayguard_screen_state_bytes', help: 'Checkpoint bytes of each screen stage\'s state (an upper-bound estimate), at the last checkpoint', labelNames: ['screen'] as const, registers: [registry] }),
    screenStateBudget: new Gauge({ name: 'tayguard_screen_state_budget_bytes', help: 'The byte budget each screen stage\'s state is held to on every insert (SCREEN_STATE_BYTES, or the stage\'s maxStateBytes)', labelNames: ['screen'] as const, registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
