/**
 * 10,000 records (5% malformed in ten different ways, plus re-sent ids) through the real Kafka-protocol broker
 * and a real `tayguard serve` process: every record ends in exactly one outcome, every quarantined message
 * carries its reason, committed offsets reach the end, memory stays bounded, SIGTERM exits cleanly.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Kafka } from 'kafkajs';
import { kafkaFor, offsets, produce, readAll, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { mixedStream } from '../helpers/records';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(180_000);

const BIN = path.resolve(__dirname, '../../bin/tayguard.js');
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('stream of 10,000 records through the local broker', () => {
  let broker: LocalBroker;
  let kafka: Kafka;
  let sidecar: SidecarProcess;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-stream-'));
  const prefix = 'itest';
  const N = 10_000;
  const DUPLICATES = 100;
  const { messages, malformed, expectedCodes } = mixedStream(N - DUPLICATES, 19, 'stream-test');
  // Re-send the first 100 valid records under their same ids (a producer retry): skipped as duplicates.
  const resent = messages.filter((m) => m.key !== null).slice(0, DUPLICATES);
  const stream = [...messages, ...resent];

  beforeAll(async () => {
    broker = await startLocalBroker();
    kafka = kafkaFor(broker);
    sidecar = await startSidecar(
      {
        KAFKA_BROKERS: broker.bootstrap,
        TOPIC_PREFIX: prefix,
        GROUP_ID: 'itest-group',
        CHECKPOINT_DIR: path.join(dir, 'ckpt'),
        CHECKPOINT_EVERY_RECORDS: '2000',
        CHECKPOINT_INTERVAL_MS: '500',
        MAX_TEXT_CHARS: '2000',
      },
      path.join(dir, 'sidecar.log'),
    );
    await produce(kafka, `${prefix}.records`, stream);
  });

  afterAll(async () => {
    sidecar?.child.kill('SIGKILL');
    await broker?.stop();
  });

  it('gives every record exactly one outcome: trained + quarantined + skipped = produced', async () => {
    expect(stream).toHaveLength(N);
    await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= N, 120_000, 'all records handled');
    const { records } = (await sidecar.json('/v1/model')).detail;
    expect(total(records)).toBe(N);
    expect(records.quarantined).toBe(malformed);
    expect(records.skipped).toBe(DUPLICATES);
    expect(records.skipReasons).toEqual({ duplicate: DUPLICATES });
    expect(records.trained).toBe(N - malformed - DUPLICATES);
    expect(malformed).toBeGreaterThanOrEqual(0.05 * (N - DUPLICATES) - 1);
  });

  it('puts every malformed message on the quarantine topic with its reason and origin', async () => {
    await waitFor(async () => (await offsets(kafka, 'itest-group', `${prefix}.records`)).every((p) => p.committed === p.end), 30_000, 'offsets committed');
    const quarantined = await readAll(kafka, `${prefix}.quarantine`);
    expect(quarantined).toHaveLength(malformed);
    const codes = new Map<string, number>();
    for (const q of quarantined) {
      const body = JSON.parse(q.value);
      expect(body).toEqual({
        record: expect.anything(),
        reasons: expect.any(Array),
        topic: `${prefix}.records`,
        partition: expect.any(Number),
        offset: expect.stringMatching(/^\d+$/),
        source: null, // these producers sent no key and no parseable source
        messageKey: null, // released with the message's own key (none here)
        at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      });
      expect(body.reasons.length).toBeGreaterThan(0);
      for (const r of body.reasons) expect(r).toEqual({ stage: 'schema', code: expect.any(String), message: expect.any(String) });
      codes.set(body.reasons[0].code, (codes.get(body.reasons[0].code) ?? 0) + 1);
      if (body.reasons[0].code === 'invalid_utf8') expect(body.record).toEqual({ base64: expect.any(String) });
    }
    expect(Object.fromEntries(codes)).toEqual(Object.fromEntries(expectedCodes));
  });

  it('commits offsets up to the end offsets of every partition', async () => {
    const parts = await offsets(kafka, 'itest-group', `${prefix}.records`);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.committed).toBe(p.end);
  });

  it('publishes metrics that agree with the outcomes, and stays under 500 MB RSS with the 2^14 text model', async () => {
    const text = await (await fetch(`${sidecar.base}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1]);
    expect(value(/tayguard_records_total\{outcome="quarantined"\} (\d+)/)).toBe(malformed);
    expect(value(/tayguard_records_quarantined_total\{reason="invalid_json"\} (\d+)/)).toBe(expectedCodes.get('invalid_json'));
    const rss = value(/tayguard_process_resident_memory_bytes (\d+)/);
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(500 * 1024 * 1024);
    const model = await sidecar.json('/v1/model');
    expect(model.version).toBeGreaterThan(0);
    expect(model.inputDim).toBe(4096); // the default TEXT_HASH_DIM
  });

  it('CLI: `tayguard replay` produces a JSONL file (malformed lines too) and `tayguard predict` asks the sidecar', async () => {
    const file = path.join(dir, 'replay.jsonl');
    writeFileSync(file, [
      JSON.stringify({ id: 'replay-1', source: 'carol', label: 1, text: 'free money win' }),
      'not json at all',
      JSON.stringify({ id: 'replay-2', source: 'carol', label: 0, text: 'meeting agenda' }),
      '',
    ].join('\n'));
    const replay = await run(['replay', file, '--brokers', broker.bootstrap, '--topic', `${prefix}.records`]);
    expect(replay.code).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ topic: `${prefix}.records`, produced: 3 });
    await waitFor(async () => total((await sidecar.json('/v1/model')).detail.records) >= N + 3, 30_000, 'replayed records handled');
    const { records } = (await sidecar.json('/v1/model')).detail;
    expect(records.quarantined).toBe(malformed + 1);
    expect(records.trained).toBe(N - malformed - DUPLICATES + 2);

    const predicted = await run(['predict', '--url', sidecar.base, '--text', 'free money win prize', 'meeting agenda notes']);
    expect(predicted.code).toBe(0);
    const body = JSON.parse(predicted.stdout);
    expect(body.predictions.map((p: { label: number }) => p.label)).toEqual([1, 0]);

    const bad = await run(['replay', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no brokers: pass --brokers/);
  });

  it('exits 0 within 30 s of SIGTERM', async () => {
    const t0 = Date.now();
    sidecar.child.kill('SIGTERM');
    const { code } = await sidecar.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});
