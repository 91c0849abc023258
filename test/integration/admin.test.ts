/**
 * The quarantine admin API against a real broker and a real `tayguard serve`: list and filter, release with a
 * note (the record comes back and is trained), forged releases do not bypass the screens, block a source.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { kafkaFor, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(120_000);

const TOKEN = 'test-admin-token-0123456789';
const prefix = 'admin';

describe('quarantine admin API', () => {
  let broker: LocalBroker;
  let kafka: Kafka;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    broker = await startLocalBroker();
    kafka = kafkaFor(broker);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-admin-'));
    sidecar = await startSidecar(
      { KAFKA_BROKERS: broker.bootstrap, TOPIC_PREFIX: prefix, CHECKPOINT_DIR: path.join(dir, 'ckpt'), ADMIN_TOKEN: TOKEN, SCREENS: 'echo,toxicity', CHECKPOINT_INTERVAL_MS: '300' },
      path.join(dir, 'sidecar.log'),
    );
  });
  afterAll(async () => {
    sidecar?.child.kill('SIGKILL');
    await broker?.stop();
  });

  const admin = (p: string, init: RequestInit = {}, token = TOKEN) =>
    fetch(`${sidecar.base}/v1/admin${p}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
  const send = async (messages: { key: string; value: string; headers?: Record<string, string> }[]) => {
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    await producer.send({ topic: `${prefix}.records`, acks: -1, messages });
    await producer.disconnect();
  };
  const counts = async () => (await sidecar.json('/v1/model')).detail.records;

  it('refuses requests without the right bearer token', async () => {
    expect((await fetch(`${sidecar.base}/v1/admin/quarantine`)).status).toBe(401);
    const wrong = await admin('/quarantine', {}, 'x'.repeat(TOKEN.length));
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as any).error.code).toBe('UNAUTHORIZED');
  });

  it('lists quarantined records by reason, and a release with a note brings one back to training', async () => {
    const echo = JSON.stringify({ id: 'e1', source: 'mallory', label: 0, text: 'repeat after me: the moon is made of cheese' });
    const forged = JSON.stringify({ id: 'e2', source: 'mallory', label: 0, text: 'repeat after me: forged releases do not work' });
    await send([
      { key: 'mallory', value: echo },
      { key: 'mallory', value: forged, headers: { 'tayguard-release': '00000000-0000-0000-0000-000000000000:abcd' } },
      { key: 'alice', value: JSON.stringify({ id: 'ok1', source: 'alice', label: 1, text: 'cheap offer today' }) },
    ]);
    await waitFor(async () => total(await counts()) >= 3, 30_000, 'three records handled');
    expect(await counts()).toMatchObject({ quarantined: 2, trained: 1 });

    const list = (await (await admin('/quarantine?reason=echo_instruction&source=mallory')).json()) as any;
    expect(list.entries).toHaveLength(2);
    expect(list.entries.map((e: any) => JSON.parse(e.record).id).sort()).toEqual(['e1', 'e2']);
    const key = list.entries.find((e: any) => JSON.parse(e.record).id === 'e1').key;
    expect((await (await admin('/quarantine?reason=toxic_language')).json()) as any).toMatchObject({ entries: [] });

    const res = await admin('/quarantine/release', { method: 'POST', body: JSON.stringify({ keys: [key, 'admin.records/9/999'], operator: 'dana', note: 'a quote in a bug report, not abuse' }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ released: [key], unknown: ['admin.records/9/999'] });
    await waitFor(async () => (await counts()).trained >= 2, 30_000, 'released record trained');
    expect(await counts()).toMatchObject({ quarantined: 2, trained: 2 });
    const releases = (await (await admin('/releases')).json()) as any;
    expect(releases.releases).toEqual([{ keys: [key], operator: 'dana', note: 'a quote in a bug report, not abuse', at: expect.any(String) }]);
  });

  it('rejects a release without operator and note', async () => {
    const res = await admin('/quarantine/release', { method: 'POST', body: JSON.stringify({ keys: ['a/1/2'] }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.message).toMatch(/operator/);
  });

  it('blocks a source: its next records are quarantined as source_blocked', async () => {
    const res = await admin('/sources/trudy/block', { method: 'POST', body: JSON.stringify({ operator: 'dana', note: 'sybil ring' }) });
    expect(res.status).toBe(200);
    const before = await counts();
    await send([{ key: 'trudy', value: JSON.stringify({ id: 't1', source: 'trudy', label: 0, text: 'hello there, lunch?' }) }]);
    await waitFor(async () => total(await counts()) > total(before), 30_000, 'blocked record handled');
    expect((await counts()).quarantineReasons.source_blocked).toBe(1);
  });
});
