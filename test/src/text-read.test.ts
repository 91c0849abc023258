/**
 * TEXT_READ_CHARS: training, the screens and POST /v1/predict read a text's first TEXT_READ_CHARS characters (the
 * red-team DoS family: a 20,000-character record cost the toxicity screen 11× the median mail). The cut is made
 * once, at ingest (filters/schema.ts readPart), counted on /metrics, never inside a surrogate pair, and predictions
 * read texts the same way, so what is served is what was trained.
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { parseRecord, readPart, type SchemaLimits } from '../../filters/schema';

const limits: SchemaLimits = { numClasses: 2, task: 'text', maxTextChars: 20_000, textReadChars: 6_000, maxMessageBytes: 256 * 1024 };
const msg = (text: string) => ({ value: Buffer.from(JSON.stringify({ id: 'r1', source: 's', label: 0, text })) });

describe('TEXT_READ_CHARS at ingest', () => {
  it('cuts a long text to its first TEXT_READ_CHARS characters and says from how long', () => {
    const text = 'hello there '.repeat(1_700); // 20,400 chars
    const long = parseRecord(msg(text.slice(0, 20_000)), limits);
    expect(long.ok).toBe(true);
    if (!long.ok) return;
    expect(long.record.text).toBe(text.slice(0, 6_000));
    expect(long.cutFrom).toBe(20_000);
    const short = parseRecord(msg('see you at lunch'), limits);
    expect(short.ok && short.record.text).toBe('see you at lunch');
    expect(short.ok && short.cutFrom).toBeUndefined();
    // Over MAX_TEXT_CHARS is still refused, not cut: the producer is told.
    const over = parseRecord(msg('x'.repeat(20_001)), limits);
    expect(over.ok).toBe(false);
    expect(!over.ok && over.reasons[0].code).toBe('text_too_long');
  });

  it('never splits a surrogate pair, and abuse placed past the cut is not in the record the model learns from', () => {
    const emoji = '😀'; // two UTF-16 code units
    const text = 'a'.repeat(5_999) + emoji + ' fucking idiot'.repeat(10);
    const r = parseRecord(msg(text), limits);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.record.text).toBe('a'.repeat(5_999));
    expect(() => encodeURIComponent(r.record.text as string)).not.toThrow(); // no lone surrogate
    expect(readPart('ab', 5)).toBe('ab');
    expect(readPart('abcdef', undefined)).toBe('abcdef');
  });
});

describe('TEXT_READ_CHARS in the sidecar', () => {
  let sidecar: Sidecar;
  beforeAll(async () => {
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', TEXT_HASH_DIM: '1024', SEED: 'text-read', TEXT_READ_CHARS: '200', CHECKPOINT_DIR: mkdtempSync(path.join(os.tmpdir(), 'tg-text-read-')) });
    expect(config.limits.textReadChars).toBe(200);
    sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
  }, 60_000);
  afterAll(async () => {
    await sidecar.stop();
  });

  it('is capped by MAX_TEXT_CHARS when that is lower', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'h:1', MAX_TEXT_CHARS: '1000' }).limits.textReadChars).toBe(1000);
    expect(loadConfig({ KAFKA_BROKERS: 'h:1' }).limits.textReadChars).toBe(4000);
  });

  it('predicts a long text exactly as its first TEXT_READ_CHARS characters', async () => {
    const head = 'free money now win a prize '.repeat(8).slice(0, 200);
    const long = head + ' see you at lunch meeting moved'.repeat(50);
    const res = await fetch(`http://127.0.0.1:${sidecar.port}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ records: [{ text: long }, { text: head }, { text: ' see you at lunch meeting moved'.repeat(50) }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { predictions: { probabilities: number[] }[] };
    expect(body.predictions[0].probabilities).toEqual(body.predictions[1].probabilities);
    expect(body.predictions[0].probabilities).not.toEqual(body.predictions[2].probabilities);
  });

  it('counts a cut record on /metrics and trains it', async () => {
    const pipeline = (sidecar as unknown as { buildPipeline(sink: unknown): { handle(raw: unknown): Promise<unknown> } }).buildPipeline({ write: async () => undefined, flush: async () => undefined });
    await pipeline.handle({ topic: 'tayguard.records', partition: 0, offset: '0', value: msg('word '.repeat(100)).value, timestamp: String(Date.now()) });
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.port}/metrics`)).text();
    expect(metrics).toMatch(/^tayguard_text_cut_total 1$/m);
    expect(metrics).toMatch(/^tayguard_records_total\{outcome="trained"\} 1$/m);
  });
});
