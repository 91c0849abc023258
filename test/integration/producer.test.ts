/**
 * tayguard/producer against the real local Kafka-protocol broker (kcat's mock cluster): valid records arrive
 * keyed by their source and pass the sidecar's schema stage as consumed; a batch with a bad record is refused
 * before anything reaches the topic, with the reasons the quarantine would have given.
 */
import { Partitioners, type Kafka } from 'kafkajs';
import { parseRecord } from '../../filters/schema';
import { createRecordProducer, RecordContractError, type RecordProducer } from '../../src/producer';
import { kafkaFor, readAll, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { MALFORMED } from '../helpers/records';

jest.setTimeout(120_000);

const LIMITS = { numClasses: 2, maxTextChars: 2000 };
const SCHEMA = { numClasses: 2, task: 'text' as const, maxTextChars: 2000, maxMessageBytes: 256 * 1024 };

describe('createRecordProducer on a real broker', () => {
  let broker: LocalBroker;
  let kafka: Kafka;
  let producer: RecordProducer;
  const prefix = `producer-${Date.now()}`;
  const topic = `${prefix}.records`;
  const good = Array.from({ length: 20 }, (_, i) => ({ id: `p-${i}`, source: `user-${i % 3}`, ts: 1_700_000_000_000 + i, label: i % 2, text: `record number ${i}` }));

  beforeAll(async () => {
    broker = await startLocalBroker();
    kafka = kafkaFor(broker);
    producer = createRecordProducer(kafka, { topicPrefix: prefix, limits: LIMITS, producerConfig: { allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner } });
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await broker?.stop();
  });

  it('delivers valid records, keyed by source, as bytes the sidecar accepts', async () => {
    const meta = await producer.send(good);
    expect(meta.length).toBeGreaterThan(0);
    const onTopic = await readAll(kafka, topic);
    expect(onTopic).toHaveLength(good.length);
    const byId = new Map(onTopic.map((m) => [JSON.parse(m.value).id as string, m]));
    for (const r of good) {
      const m = byId.get(r.id)!;
      expect(m.key).toBe(r.source);
      const parsed = parseRecord({ value: Buffer.from(m.value) }, SCHEMA);
      expect(parsed.ok && parsed.record).toEqual(r);
    }
  });

  it('refuses a batch with bad records before sending any of it', async () => {
    const batch = [good[0], ...MALFORMED.map((m, i) => m.make(i)), { ...good[1], id: 'p-late' }];
    const err = await producer.send(batch).catch((e) => e);
    expect(err).toBeInstanceOf(RecordContractError);
    expect(err.code).toBe('RECORD_INVALID');
    expect(err.problems.map((p: { index: number }) => p.index)).toEqual(MALFORMED.map((_, i) => i + 1));
    MALFORMED.forEach((m, i) => expect(err.problems[i].reasons.map((r: { code: string }) => r.code)).toContain(m.code));
    // Nothing of the batch arrived: the topic holds only the first test's records.
    const onTopic = await readAll(kafka, topic);
    expect(onTopic).toHaveLength(good.length);
    expect(onTopic.some((m) => m.value.includes('p-late'))).toBe(false);
  });
});
