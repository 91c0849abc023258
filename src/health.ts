/**
 * What /readyz and /metrics say about the failures that used to be visible only in the log (issue 14): a
 * failing checkpoint, a consumer that is not running, a broker that stopped answering, offsets that went
 * backwards, a rolled-back training step. Readiness is the AND of these; each failing check adds a reason
 * with a stable code and what to do next, so an operator (or a probe) never sees a 200 over a stalled sidecar.
 */
import { Counter } from 'prom-client';
import type { Metrics } from './metrics';
import type { ErrorCode } from './errors';

export interface HealthReason {
  readonly code: ErrorCode;
  readonly message: string;
}

export interface HealthReport {
  readonly ok: boolean;
  readonly reasons: readonly HealthReason[];
  readonly checkpointFailures: number;
  readonly lastCheckpointError: { readonly at: string; readonly message: string } | null;
  readonly consumer: { readonly running: boolean; readonly crashes: number; readonly lastCrash: { readonly at: string; readonly message: string } | null };
  readonly broker: { readonly lastContactAt: string | null; readonly unreachableForMs: number | null };
  readonly halted: HealthReason | null;
  readonly lastPublishRefusal: { readonly at: string; readonly reason: string } | null;
}

export class Health {
  private checkpointFailuresInRow = 0;
  checkpointFailures = 0;
  private lastCheckpointError: { at: string; message: string } | null = null;
  private consumerRunning = false;
  private consumerStarted = false;
  private crashes = 0;
  private lastCrash: { at: string; message: string } | null = null;
  private lastContact: number | null = null;
  private halt: HealthReason | null = null;
  private flushError: { at: string; message: string } | null = null;
  private lastPublishRefusal: { at: string; reason: string } | null = null;
  private readonly publishRefusedTotal: Counter;
  private readonly checkpointFailuresTotal: Counter;
  private readonly consumerCrashesTotal: Counter<'restart'>;
  readonly offsetResetsTotal: Counter<'policy'>;

  constructor(
    metrics: Metrics,
    private readonly brokerTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    const r = metrics.registry;
    this.checkpointFailuresTotal = new Counter({ name: 'tayguard_checkpoint_failures_total', help: 'Checkpoint attempts that failed (retried with backoff; /readyz is 503 until one succeeds)', registers: [r] });
    this.consumerCrashesTotal = new Counter({ name: 'tayguard_consumer_crashes_total', help: 'Kafka consumer crashes, by whether kafkajs restarted it itself (restart="false": tayguard restarts it)', labelNames: ['restart'] as const, registers: [r] });
    this.publishRefusedTotal = new Counter({ name: 'tayguard_publish_refused_total', help: 'Model versions not published because their weights were not finite or the probe prediction was invalid (an alert)', registers: [r] });
    this.offsetResetsTotal = new Counter({ name: 'tayguard_offset_resets_total', help: 'Partitions whose broker offsets were below the checkpoint watermark (topic recreated or new cluster), by OFFSET_RESET_POLICY', labelNames: ['policy'] as const, registers: [r] });
  }

  checkpointSucceeded(): void {
    this.checkpointFailuresInRow = 0;
    this.lastCheckpointError = null;
  }

  checkpointFailed(error: unknown): void {
    this.checkpointFailures += 1;
    this.checkpointFailuresInRow += 1;
    this.checkpointFailuresTotal.inc();
    this.lastCheckpointError = { at: new Date(this.now()).toISOString(), message: (error as Error)?.message ?? String(error) };
  }

  flushFailed(error: unknown): void {
    this.flushError = { at: new Date(this.now()).toISOString(), message: (error as Error)?.message ?? String(error) };
  }

  flushSucceeded(): void {
    this.flushError = null;
  }

  publishRefused(reason: string): void {
    this.publishRefusedTotal.inc();
    this.lastPublishRefusal = { at: new Date(this.now()).toISOString(), reason };
  }

  consumerJoined(): void {
    this.consumerStarted = true;
    this.consumerRunning = true;
    this.brokerContact();
  }

  consumerCrashed(error: Error, restart: boolean): void {
    this.consumerRunning = false;
    this.crashes += 1;
    this.consumerCrashesTotal.inc({ restart: String(restart) });
    this.lastCrash = { at: new Date(this.now()).toISOString(), message: error?.message ?? String(error) };
  }

  brokerContact(): void {
    this.lastContact = this.now();
  }

  /** Consumption stopped on purpose (offsets reset with OFFSET_RESET_POLICY=fail): not ready until restarted. */
  halted(reason: HealthReason): void {
    this.halt = reason;
  }

  /**
   * The failing checks, each with what to do. The consumer and broker checks apply once a consumer has joined
   * (an HTTP-only sidecar in tests, or one still connecting, is covered by the sidecar's own `joined`).
   */
  report(): HealthReport {
    const consumerExpected = this.consumerStarted;
    const reasons: HealthReason[] = [];
    if (this.halt) reasons.push(this.halt);
    if (this.lastCheckpointError) {
      reasons.push({ code: 'CHECKPOINT_FAILED', message: `the last ${this.checkpointFailuresInRow} checkpoint attempt(s) failed (${this.lastCheckpointError.message}); consumption waits and retries with backoff: check CHECKPOINT_DIR (writable? disk full?) and the broker` });
    }
    if (this.flushError) {
      reasons.push({ code: 'QUARANTINE_FLUSH_FAILED', message: `sending quarantined records to the quarantine topic failed (${this.flushError.message}); consumption waits and retries with backoff: check the broker` });
    }
    if (consumerExpected && this.consumerStarted && !this.consumerRunning) {
      reasons.push({ code: 'CONSUMER_STOPPED', message: `the Kafka consumer is not running (crashed: ${this.lastCrash?.message ?? 'unknown'}); it is being restarted with backoff — if this persists, check the broker and the log` });
    }
    const silentFor = this.lastContact === null ? null : this.now() - this.lastContact;
    if (consumerExpected && this.consumerStarted && silentFor !== null && silentFor > this.brokerTimeoutMs) {
      reasons.push({ code: 'BROKER_UNAVAILABLE', message: `no successful broker request for ${Math.round(silentFor / 1000)} s (READY_BROKER_TIMEOUT_MS=${this.brokerTimeoutMs}): check KAFKA_BROKERS and the broker` });
    }
    return {
      ok: reasons.length === 0,
      reasons,
      checkpointFailures: this.checkpointFailures,
      lastCheckpointError: this.lastCheckpointError,
      consumer: { running: this.consumerRunning, crashes: this.crashes, lastCrash: this.lastCrash },
      broker: { lastContactAt: this.lastContact === null ? null : new Date(this.lastContact).toISOString(), unreachableForMs: silentFor !== null && silentFor > this.brokerTimeoutMs ? silentFor : null },
      halted: this.halt,
      lastPublishRefusal: this.lastPublishRefusal,
    };
  }
}
