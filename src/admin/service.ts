/**
 * What the admin routes (src/http/admin.ts) do: page through quarantined records on the quarantine topic, release
 * them back into the pipeline with a signed header (logged, with the operator's note kept), block and unblock
 * sources. The quarantine topic is the source of truth for both listing and releasing (issue 10 item 5); the
 * in-memory index is a cache of this process's recent entries for releases by original key.
 */
import { TayguardError } from '../../core/errors';
import type { Logger } from '../logger';
import type { RecordProducer } from '../ingest/client';
import type { SourceRegistry } from '../../filters/trust';
import type { TopicReader } from '../quarantine/reader';
import type { AdminView, ReleaseRecord } from '../http/admin';
import { QuarantineIndex, type QuarantineEntry } from './quarantine-index';
import { readAt, readPage, type Page, type PageRequest } from './quarantine-page';
import { RELEASE_HEADER, type ReleaseSigner } from './release';

export interface AdminDeps {
  readonly signer?: ReleaseSigner;
  readonly recordsTopic: string;
  readonly quarantineTopic: string;
  /** The producer once Kafka is connected. */
  readonly producer: () => RecordProducer | undefined;
  /** The quarantine topic reader once Kafka is connected. */
  readonly reader: () => TopicReader | undefined;
  readonly registry: () => SourceRegistry;
  readonly logger: Logger;
  /** Byte budget of the in-memory cache of recent quarantined records (QUARANTINE_INDEX_BYTES). */
  readonly indexBytes?: number;
}

export interface Released {
  readonly by: string;
  readonly note: string;
  readonly at: string;
}

/** Original keys remembered as released, for the list's `released` field (this process only; oldest forgotten). */
const RELEASED_KEPT = 10_000;

const notConnected = () => new TayguardError('MODEL_NOT_READY', 'the sidecar is not connected to Kafka yet; retry in a moment', { retriable: true });

export class AdminService implements AdminView {
  readonly index: QuarantineIndex;
  private readonly log: ReleaseRecord[] = [];
  private readonly released = new Map<string, Released>();

  constructor(private readonly deps: AdminDeps) {
    this.index = new QuarantineIndex({ maxBytes: deps.indexBytes });
  }

  async listQuarantine(req: PageRequest): Promise<Page & { released: (key: string) => Released | null }> {
    const reader = this.deps.reader();
    if (!reader) throw notConnected();
    const page = await readPage(reader, this.deps.quarantineTopic, req);
    return { ...page, released: (key) => this.released.get(key) ?? null };
  }

  /**
   * Put quarantined records back on the records topic, signed so that they skip the poisoning screens. A key is
   * either a quarantine coordinate (`<quarantine topic>/<partition>/<offset>`, from the list: found as long as the
   * topic retains it) or an original key (`<records topic>/<partition>/<offset>`: found only in the cache).
   */
  async release(keys: readonly string[], operator: string, note: string): Promise<{ released: string[]; unknown: string[]; truncated?: string[] }> {
    const { signer } = this.deps;
    const producer = this.deps.producer();
    const reader = this.deps.reader();
    if (!signer || !producer || !reader) throw notConnected();
    const onTopic = await readAt(reader, this.deps.quarantineTopic, keys);
    const known = keys.map((k) => [k, onTopic.get(k) ?? this.index.get(k)] as const).filter((x): x is readonly [string, QuarantineEntry] => x[1] !== undefined);
    // A truncated (or omitted) original is not the record that arrived: releasing it would train on a fragment.
    const partial = (e: QuarantineEntry) => e.truncated !== undefined || 'omitted' in e;
    const found = known.filter(([, e]) => !partial(e));
    const truncated = known.filter(([, e]) => partial(e)).map(([k]) => k);
    const unknown = keys.filter((k) => !known.some(([kk]) => kk === k));
    // Nothing to release: no empty release is logged or kept.
    // `truncated` only when there are some: the answer stays {released, unknown} otherwise.
    const notReleasable = truncated.length > 0 ? { truncated } : {};
    if (found.length === 0) return { released: [], unknown, ...notReleasable };
    await producer.send(
      this.deps.recordsTopic,
      found.map(([, e]) => ({ key: e.messageKey, value: e.value, headers: { [RELEASE_HEADER]: signer.sign(e.value), 'tayguard-released-by': operator } })),
    );
    const at = new Date().toISOString();
    for (const [, e] of found) {
      this.released.delete(e.key);
      this.released.set(e.key, { by: operator, note, at });
      if (this.released.size > RELEASED_KEPT) this.released.delete(this.released.keys().next().value as string);
    }
    const record: ReleaseRecord = { keys: found.map(([k]) => k), operator, note, at };
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
