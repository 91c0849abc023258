/**
 * What the admin routes (src/http/admin.ts) do: review recent quarantined records, release them back into the
 * pipeline with a signed header (logged, with the operator's note kept), block and unblock sources.
 */
import { TayguardError } from '../errors';
import type { Logger } from '../logger';
import type { RecordProducer } from '../kafka/client';
import type { SourceRegistry } from '../../filters/trust';
import type { AdminView, ReleaseRecord } from '../http/admin';
import { QuarantineIndex, type QuarantineEntry } from './quarantine-index';
import { RELEASE_HEADER, type ReleaseSigner } from './release';

export interface AdminDeps {
  readonly signer?: ReleaseSigner;
  readonly recordsTopic: string;
  /** The producer once Kafka is connected. */
  readonly producer: () => RecordProducer | undefined;
  readonly registry: () => SourceRegistry;
  readonly logger: Logger;
  /** Byte budget of the in-memory quarantine index (QUARANTINE_INDEX_BYTES). */
  readonly indexBytes?: number;
}

export class AdminService implements AdminView {
  readonly index: QuarantineIndex;
  private readonly log: ReleaseRecord[] = [];

  constructor(private readonly deps: AdminDeps) {
    this.index = new QuarantineIndex({ maxBytes: deps.indexBytes });
  }

  listQuarantine(filter: { reason?: string; source?: string; stage?: string; limit?: number }): QuarantineEntry[] {
    return this.index.list(filter);
  }

  /** Put quarantined records back on the records topic, signed so that they skip the poisoning screens. */
  async release(keys: readonly string[], operator: string, note: string): Promise<{ released: string[]; unknown: string[]; truncated?: string[] }> {
    const { signer } = this.deps;
    const producer = this.deps.producer();
    if (!signer || !producer) throw new TayguardError('MODEL_NOT_READY', 'the sidecar is not connected to Kafka yet; retry in a moment', { retriable: true });
    const known = keys.map((k) => this.index.get(k)).filter((e): e is QuarantineEntry => e !== undefined);
    // A truncated original is not the record that arrived: releasing it would train on a fragment.
    const found = known.filter((e) => !e.truncated);
    const truncated = known.filter((e) => e.truncated).map((e) => e.key);
    const unknown = keys.filter((k) => !this.index.get(k));
    // Nothing to release: no empty release is logged or kept.
    // `truncated` only when there are some: the answer stays {released, unknown} otherwise.
    const notReleasable = truncated.length > 0 ? { truncated } : {};
    if (found.length === 0) return { released: [], unknown, ...notReleasable };
    await producer.send(
      this.deps.recordsTopic,
      found.map((e) => ({ key: e.messageKey, value: e.value, headers: { [RELEASE_HEADER]: signer.sign(e.value), 'tayguard-released-by': operator } })),
    );
    const at = new Date().toISOString();
    for (const e of found) e.released = { by: operator, note, at };
    const record: ReleaseRecord = { keys: found.map((e) => e.key), operator, note, at };
    this.log.push(record);
    if (this.log.length > 1000) this.log.shift();
    this.deps.logger.info({ release: record }, 'operator released quarantined records');
    return { released: [...record.keys], unknown, ...notReleasable };
  }

  releases(): readonly ReleaseRecord[] {
    return this.log;
  }

  block(source: string, operator: string, note: string): void {
    this.deps.registry().block(source);
    this.deps.logger.info({ source, operator, note }, 'operator blocked a source');
  }

  unblock(source: string, operator: string, note: string): void {
    this.deps.registry().unblock(source);
    this.deps.logger.info({ source, operator, note }, 'operator unblocked a source');
  }
}
