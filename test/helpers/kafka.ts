/** Real-broker helpers for integration tests: the local Kafka-protocol broker, producing, reading back, offsets. */
import { Kafka, logLevel } from 'kafkajs';
import { startLocalBroker, type LocalBroker } from '../../src/dev/broker';

export { startLocalBroker, type LocalBroker };

export function kafkaFor(broker: LocalBroker): Kafka {
  return new Kafka({ clientId: 'tayguard-test', brokers: broker.brokers, logLevel: logLevel.NOTHING, retry: { retries: 8 } });
}

export async function produce(kafka: Kafka, topic: string, messages: readonly { key: string | null; value: string | Buffer }[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  for (let i = 0; i < messages.length; i += 1000) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000).map((m) => ({ key: m.key, value: m.value })) });
  }
  await producer.disconnect();
}

/** Read every message currently on a topic (from the beginning up to the high watermarks). */
export async function readAll(kafka: Kafka, topic: string): Promise<{ key: string | null; value: string; partition: number; offset: string }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const total = ends.reduce((n, e) => n + Number(BigInt(e.high) - BigInt(e.low)), 0);
  const out: { key: string | null; value: string; partition: number; offset: string }[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${out.length}/${total} messages of ${topic} before timing out`)), 30000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (BigInt(message.offset) < (want.get(partition) ?? 0n)) {
          out.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', partition, offset: message.offset });
        }
        if (out.length >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}

/** Committed offsets of a group vs the topic's end offsets, per partition. */
export async function offsets(kafka: Kafka, groupId: string, topic: string) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    return ends
      .map((e) => ({ partition: e.partition, end: e.high, committed: committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? '-1' }))
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}
