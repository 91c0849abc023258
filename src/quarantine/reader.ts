/**
 * Reading the quarantine topic at a given partition and offset, without a consumer group (issue 10 item 5: the
 * admin list pages through the topic instead of a 5,000-entry in-memory ring an attacker could flush).
 *
 * Why not a kafkajs consumer: kafkajs has no assign(), so every consumer joins a group, and a new group's first
 * join waits group.initial.rebalance.delay.ms (3 s by default on Apache Kafka, and measured 3.0 s on librdkafka's
 * mock cluster) — per admin request. What the list needs is one Fetch request at an offset with a byte bound:
 * stateless, nothing joined, nothing committed. kafkajs's consumer sends exactly that through its internal
 * Cluster and Broker objects; this file reaches them through the client's own cluster factory, and is the only
 * place that does, so a change of Kafka client (src/ingest/client.ts) touches this file alone. If a kafkajs
 * release moves the factory, every call fails with INTERNAL saying so (the list answers 500, nothing else stops).
 */
import type { Kafka } from 'kafkajs';
import { TayguardError } from '../../core/errors';

export interface PartitionRange {
  readonly partition: number;
  /** The oldest offset still retained (log start). */
  readonly low: bigint;
  /** The next offset to be written (high watermark). */
  readonly high: bigint;
}

export interface FetchedMessage {
  readonly partition: number;
  readonly offset: bigint;
  /** Epoch ms (the producer's CreateTime). */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface TopicReader {
  /** Offsets of every partition; empty when the topic does not exist yet (nothing was ever quarantined). */
  partitions(): Promise<PartitionRange[]>;
  /** Messages of one partition from `offset` on, in offset order; about `maxBytes` (at least one record batch). */
  fetch(partition: number, offset: bigint, maxBytes: number): Promise<FetchedMessage[]>;
  close(): Promise<void>;
}

/** The parts of kafkajs's internal Cluster and Broker used here (kafkajs 2.x, src/cluster and src/broker). */
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number }[];
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(o: { nodeId: string }): Promise<KafkajsBroker>;
  fetchTopicsOffset(topics: { topic: string; partitions: { partition: number }[]; fromBeginning: boolean }[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}
interface KafkajsBroker {
  fetch(o: {
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    isolationLevel: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: { partition: number; messages: { offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; isControlRecord?: boolean }[] }[] }[] }>;
}

const READ_COMMITTED = 1;
/** Errors after which fresh metadata (a moved leader, a new partition) makes the same request succeed. */
const STALE = new Set(['NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'FENCED_LEADER_EPOCH', 'REPLICA_NOT_AVAILABLE']);

function clusterOf(kafka: Kafka): KafkajsCluster {
  const factory = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  const create = factory === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[factory];
  if (typeof create !== 'function') {
    throw new TayguardError('INTERNAL', 'this kafkajs version has no cluster factory to read the quarantine topic with; pin kafkajs 2.2.x or port src/quarantine/reader.ts to the new client');
  }
  return (create as (o: object) => KafkajsCluster)({ allowAutoTopicCreation: false });
}

const typeOf = (e: unknown) => (e as { type?: string } | undefined)?.type;

export function topicReader(kafka: Kafka, topic: string): TopicReader {
  let connected: Promise<KafkajsCluster> | undefined;
  const cluster = () => {
    connected ??= (async () => {
      const c = clusterOf(kafka);
      await c.connect();
      return c;
    })().catch((e: unknown) => {
      connected = undefined;
      throw e;
    });
    return connected;
  };
  const unavailable = (what: string, e: unknown) =>
    TayguardError.is(e) ? e : new TayguardError('BROKER_UNAVAILABLE', `reading the quarantine topic ${topic} failed (${what}: ${(e as Error).message}); retry, and check KAFKA_BROKERS if it persists`, { cause: e, retriable: true });
  /** Run `fn`, once more after a metadata refresh when the broker says the metadata was stale. */
  const withFreshMetadata = async <T>(what: string, fn: (c: KafkajsCluster) => Promise<T>): Promise<T> => {
    try {
      const c = await cluster();
      try {
        return await fn(c);
      } catch (e) {
        if (!STALE.has(typeOf(e) ?? '') && (e as Error).name !== 'KafkaJSTopicMetadataNotLoaded') throw e;
        await c.refreshMetadata();
        return await fn(c);
      }
    } catch (e) {
      throw unavailable(what, e);
    }
  };

  return {
    async partitions() {
      try {
        await (await cluster()).addTargetTopic(topic);
      } catch (e) {
        // The topic is auto-created by the first quarantine flush: before that there is nothing to list.
        if (typeOf(e) === 'UNKNOWN_TOPIC_OR_PARTITION') return [];
        throw unavailable('metadata', e);
      }
      return withFreshMetadata('offsets', async (c) => {
        const ids = c.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
        if (ids.length === 0) return [];
        const [[low], [high]] = await Promise.all([true, false].map((fromBeginning) => c.fetchTopicsOffset([{ topic, partitions: ids, fromBeginning }])));
        const highOf = new Map(high.partitions.map((p) => [p.partition, BigInt(p.offset)]));
        return low.partitions.map((p) => ({ partition: p.partition, low: BigInt(p.offset), high: highOf.get(p.partition) ?? BigInt(p.offset) })).sort((a, b) => a.partition - b.partition);
      });
    },
    fetch(partition, offset, maxBytes) {
      return withFreshMetadata(`fetch ${partition}@${offset}`, async (c) => {
        await c.addTargetTopic(topic);
        let [nodeId] = Object.keys(c.findLeaderForPartitions(topic, [partition]));
        if (nodeId === undefined) {
          await c.refreshMetadata();
          [nodeId] = Object.keys(c.findLeaderForPartitions(topic, [partition]));
        }
        if (nodeId === undefined) throw new TayguardError('BROKER_UNAVAILABLE', `partition ${partition} of ${topic} has no leader now; retry in a moment`, { retriable: true });
        const broker = await c.findBroker({ nodeId });
        const { responses } = await broker.fetch({
          maxWaitTime: 0, // answer with what is there: never wait for new records
          minBytes: 1,
          maxBytes,
          isolationLevel: READ_COMMITTED,
          topics: [{ topic, partitions: [{ partition, fetchOffset: offset.toString(), maxBytes }] }],
        });
        const messages = responses.find((r) => r.topicName === topic)?.partitions.find((p) => p.partition === partition)?.messages ?? [];
        // A fetch answers whole record batches: the one holding `offset` may start before it.
        return messages
          .filter((m) => !m.isControlRecord && BigInt(m.offset) >= offset)
          .map((m) => ({ partition, offset: BigInt(m.offset), timestamp: Number(m.timestamp), key: m.key, value: m.value }));
      });
    },
    async close() {
      const c = connected;
      connected = undefined;
      if (c) await (await c.catch(() => undefined))?.disconnect();
    },
  };
}
