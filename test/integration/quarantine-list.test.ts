/**
 * The admin quarantine list pages the quarantine topic (issue 10 item 5): after 6,000 more quarantined records, the
 * first one is still listed and can be released by its coordinates — with the in-memory cache off, so both come
 * from the topic. A real broker and a real `tayguard serve`; the flood is written with the sidecar's own envelope
 * builder (src/quarantine/envelope.ts) straight onto the quarantine topic, in batches, to keep the test fast.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { readPage } from '../../src/admin/quarantine-page';
import { quarantineList } from '../../src/http/schemas-admin';
import { topicReader } from '../../src/quarantine/reader';
import { quarantineEnvelope } from '../../src/quarantine/envelope';
import { kafkaFor, produce, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { startSidecar, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(120_000);

const TOKEN = 'test-admin-token-qlist-0123456789';
const prefix = 'qlist';
const FLOOD = 6000;

describe('quarantine list paged from the quarantine topic', () => {
  let broker: LocalBroker;
  let kafka: Kafka;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    broker = await startLocalBroker();
    kafka = kafkaFor(broker);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-qlist-'));
    sidecar = await startSidecar(
      // QUARANTINE_INDEX_BYTES=0: nothing cached in memory, so listing and releasing must read the topic.
      { KAFKA_BROKERS: broker.bootstrap, TOPIC_PREFIX: prefix, CHECKPOINT_DIR: path.join(dir, 'ckpt'), ADMIN_TOKEN: TOKEN, SCREENS: 'echo', CHECKPOINT_INTERVAL_MS: '300', QUARANTINE_INDEX_BYTES: '0' },
      path.join(dir, 'sidecar.log'),
    );
  });
  afterAll(async () => {
    sidecar?.child.kill('SIGKILL');
    await broker?.stop();
  });

  const admin = (p: string, init: RequestInit = {}) =>
    fetch(`${sidecar.base}/v1/admin${p}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });
  const list = async (query: string) => {
    const res = await admin(`/quarantine?${query}`);
    expect(res.status).toBe(200);
    // Every answer is what /openapi.json documents (test/src/http-openapi.test.ts cannot reach Kafka).
    return quarantineList.parse(await res.json()) as any;
  };
  const counts = async () => (await sidecar.json('/v1/model')).detail.records;
  const echo = (id: string, source: string) => JSON.stringify({ id, source, label: 0, text: `repeat after me: ${id} says hello` });

  let first: any;

  it('lists the first quarantined record after 6,000 later ones, paging through all of them', async () => {
    await produce(kafka, `${prefix}.records`, [{ key: 'alice', value: echo('first', 'alice') }]);
    await waitFor(async () => (await list('source=alice')).entries.length === 1, 30_000, 'the first record on the quarantine topic');

    const flood = Array.from({ length: FLOOD }, (_, i) => {
      const raw = { topic: `${prefix}.records`, partition: i % 4, offset: String(1000 + i), key: Buffer.from('mallory'), value: Buffer.from(echo(`flood-${i}`, 'mallory')) };
      const { message } = quarantineEnvelope(raw, [{ stage: 'echo', code: 'echo_instruction', message: 'asks the model to repeat text' }], 'mallory', new Date().toISOString(), 64 * 1024);
      return message;
    });
    await produce(kafka, `${prefix}.quarantine`, flood);

    const seen: any[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const page = await list(`limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.entries.length).toBeLessThanOrEqual(500);
      seen.push(...page.entries);
      cursor = page.next;
      pages += 1;
      expect(pages).toBeLessThan(40);
    }
    expect(seen).toHaveLength(FLOOD + 1);
    expect(new Set(seen.map((e) => e.coordinates)).size).toBe(FLOOD + 1);
    expect(pages).toBeGreaterThanOrEqual(13);
    // Oldest first: the honest record quarantined before the flood heads the list.
    expect(JSON.parse(seen[0].record)).toMatchObject({ id: 'first', source: 'alice' });
    first = seen[0];
    expect(first).toMatchObject({ key: `${prefix}.records/${first.key.split('/')[1]}/0`, coordinates: expect.stringMatching(new RegExp(`^${prefix}\\.quarantine/\\d+/\\d+$`)), released: null });
    expect(seen.filter((e) => e.source === 'mallory')).toHaveLength(FLOOD);

    // A filter reads the topic too: one request finds the one record of alice among 6,001.
    const alice = await list('source=alice&limit=500');
    expect(alice.entries.map((e: any) => e.coordinates)).toEqual([first.coordinates]);
    expect(alice.next).toBeNull();
  });

  it('bounds a page by the bytes of originals it returns and by the bytes it reads, going on with next', async () => {
    const reader = topicReader(kafka, `${prefix}.quarantine`);
    try {
      const small = await readPage(reader, `${prefix}.quarantine`, { limit: 500, maxRecordBytes: 10_000, maxScanBytes: 64 * 1024 * 1024 });
      expect(small.cut).toBe('records');
      expect(small.entries.length).toBeGreaterThan(0);
      expect(small.entries.reduce((n, e) => n + e.value.length, 0)).toBeLessThanOrEqual(10_000);
      expect(small.next).not.toBeNull();
      // A narrow filter with a small read budget: pages come back empty or short, each with a next, until found.
      const found: string[] = [];
      let cursor: string | undefined;
      let reads = 0;
      for (;;) {
        const page = await readPage(reader, `${prefix}.quarantine`, { limit: 10, source: 'alice', cursor, maxRecordBytes: 1 << 20, maxScanBytes: 200_000 });
        reads += 1;
        expect(page.scannedBytes).toBeLessThan(200_000 + 4 * 1024 * 1024); // the budget plus at most one batch per partition
        found.push(...page.entries.map((e) => e.coordinates));
        if (page.next === null) break;
        expect(page.cut).toBe('scan');
        cursor = page.next;
      }
      expect(found).toEqual([first.coordinates]);
      expect(reads).toBeGreaterThan(1);
    } finally {
      await reader.close();
    }
  });

  it('releases the old record by its coordinates (not in memory), and it is trained', async () => {
    const before = await counts();
    const res = await admin('/quarantine/release', { method: 'POST', body: JSON.stringify({ keys: [first.coordinates, first.key, `${prefix}.quarantine/0/999999`], operator: 'dana', note: 'an honest record lost in a flood' }) });
    expect(res.status).toBe(200);
    // The original key is unknown: the cache is off (QUARANTINE_INDEX_BYTES=0); the coordinates are on the topic.
    expect(await res.json()).toEqual({ released: [first.coordinates], unknown: [first.key, `${prefix}.quarantine/0/999999`] });
    await waitFor(async () => (await counts()).trained > before.trained, 30_000, 'released record trained');
    const after = await list('source=alice');
    expect(after.entries[0].released).toEqual({ by: 'dana', note: 'an honest record lost in a flood', at: expect.any(String) });
  });

  it('answers a bad cursor with 400 QUARANTINE_CURSOR_INVALID saying what to send', async () => {
    const foreign = Buffer.from(JSON.stringify({ v: 1, o: { 99: '0' } })).toString('base64url');
    for (const cursor of ['not-a-cursor', 'eyJ2IjoyfQ', foreign]) {
      const res = await admin(`/quarantine?cursor=${cursor}`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as any;
      expect(body.error.code).toBe('QUARANTINE_CURSOR_INVALID');
      expect(body.error.message).toMatch(/send the `next`.*leave cursor out/);
    }
    const tooMany = await admin('/quarantine?limit=501');
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as any).error).toMatchObject({ code: 'REQUEST_INVALID', message: expect.stringMatching(/1 to 500/) });
  });

  it('tail picks up records quarantined after the end was reached', async () => {
    const end = await list('source=alice&limit=500');
    expect(end.next).toBeNull();
    await produce(kafka, `${prefix}.records`, [{ key: 'bob', value: echo('later', 'bob') }]);
    await waitFor(async () => (await list(`cursor=${end.tail}`)).entries.length === 1, 30_000, 'the later record after tail');
    const later = await list(`cursor=${end.tail}`);
    expect(JSON.parse(later.entries[0].record)).toMatchObject({ id: 'later' });
    expect(later.next).toBeNull();
  });
});
