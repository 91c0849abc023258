/**
 * tayguard/producer without a broker: the contract check (the sidecar's own schema stage on the bytes to be
 * sent), the error a producer gets, and the package export loading on its own (no tfjs, no dependencies).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Producer } from 'kafkajs';
import { createRecordProducer, limitsFromConfig, RecordContractError, validateRecord, validateRecords } from '../../src/producer';
import { loadConfig } from '../../src/config';
import { hasCode, TayguardError } from '../../core/errors';
import { MALFORMED } from '../helpers/records';

const ROOT = path.resolve(__dirname, '../..');
const TEXT = { numClasses: 2, maxTextChars: 2000 };
const codes = (r: ReturnType<typeof validateRecord>) => (r.ok ? [] : r.reasons.map((x) => x.code));

describe('validateRecord', () => {
  it('accepts a contract record and returns the exact bytes to send', () => {
    const record = { id: 'r-1', source: 'alice', ts: 1_700_000_000_000, label: 1, text: 'win a prize' };
    const r = validateRecord(record, TEXT);
    expect(r.ok && r.record).toEqual(record);
    expect(r.ok && JSON.parse(r.value.toString())).toEqual(record);
  });

  it.each(MALFORMED.map((m) => [m.code, m] as const))('refuses %s with the code the quarantine would carry', (code, m) => {
    expect(codes(validateRecord(m.make(1), TEXT))).toContain(code);
  });

  it("passes the deployment's sourceMeta and refuses a malformed one before it is sent", () => {
    const record = { id: 'r-2', source: 'alice', label: 1, text: 'win a prize', sourceMeta: { createdAt: new Date(Date.UTC(2024, 2, 1)).toISOString(), verified: true } };
    const r = validateRecord(record, TEXT);
    expect(r.ok && r.record).toEqual(record);
    expect(codes(validateRecord({ ...record, sourceMeta: { createdAt: 'last year' } }, TEXT))).toEqual(['invalid_source_meta']);
    expect(codes(validateRecord({ ...record, sourceMeta: { verified: 1 } }, TEXT))).toEqual(['invalid_source_meta']);
  });

  it('refuses what only shows once serialised: non-finite features, oversize messages', () => {
    const dense = { numClasses: 3, task: 'dense' as const, featureDim: 2 };
    expect(codes(validateRecord({ id: 'd', source: 's', label: 2, features: [0.5, NaN] }, dense))).toEqual(['non_finite_feature']);
    expect(codes(validateRecord({ id: 'd', source: 's', label: 2, features: [0.5, 1] }, dense))).toEqual([]);
    expect(codes(validateRecord({ id: 'big', source: 's', label: 0, text: 'x'.repeat(300) }, { numClasses: 2, maxMessageBytes: 256 }))).toEqual(['message_too_large']);
    expect(codes(validateRecord({ id: 'x', source: '__tayguard_canary', label: 0, text: 'x' }, TEXT))).toEqual(['reserved_source']);
  });

  it('takes its limits from a sidecar configuration', () => {
    const limits = limitsFromConfig(loadConfig({ KAFKA_BROKERS: 'k:9092', MODEL: 'dense', FEATURE_DIM: '3', NUM_CLASSES: '4', MAX_MESSAGE_BYTES: '1000', MAX_FEATURE_ABS: '100' }));
    expect(limits).toEqual({ numClasses: 4, task: 'dense', featureDim: 3, maxTextChars: 20000, maxMessageBytes: 1000, maxFeatureAbs: 100 });
    expect(codes(validateRecord({ id: 'a', source: 's', label: 3, features: [1, 2] }, limits))).toEqual(['wrong_feature_length']);
    expect(codes(validateRecord({ id: 'a', source: 's', label: 3, features: [1, 2, 101] }, limits))).toEqual(['feature_out_of_range']);
    expect(codes(validateRecord({ id: 'a', source: 's', label: 3, features: [1, 2, 100] }, limits))).toEqual([]);
  });

  it('refuses limits it cannot check with, as ARGUMENT_INVALID', () => {
    expect(() => validateRecord({}, { numClasses: 1 })).toThrow(expect.objectContaining({ code: 'ARGUMENT_INVALID' }));
    expect(() => validateRecord({}, { numClasses: 2, task: 'dense' })).toThrow(/featureDim is required/);
  });

  it('splits a batch into valid records and problems with their positions', () => {
    const { valid, invalid } = validateRecords([{ id: 'a', source: 's', label: 0, text: 'ok' }, MALFORMED[3].make(7), '{"id":'], TEXT);
    expect(valid.map((v) => v.index)).toEqual([0]);
    expect(invalid.map((p) => [p.index, p.id, p.reasons.map((r) => r.code)])).toEqual([
      [1, 'bad-7', ['label_out_of_range']],
      [2, null, ['invalid_json']],
    ]);
  });
});

describe('createRecordProducer', () => {
  function fakeProducer() {
    const sent: any[] = [];
    const producer = { connect: async () => {}, disconnect: async () => {}, send: async (r: any) => (sent.push(r), []) } as unknown as Producer;
    return { producer, sent };
  }

  it('sends valid records keyed by their source with acks=-1', async () => {
    const { producer, sent } = fakeProducer();
    const p = createRecordProducer(producer, { topicPrefix: 'acme', limits: TEXT });
    await p.send({ id: 'a', source: 'alice', label: 0, text: 'hi' });
    expect(p.topic).toBe('acme.records');
    expect(sent).toEqual([{ topic: 'acme.records', acks: -1, messages: [{ key: 'alice', value: Buffer.from('{"id":"a","source":"alice","label":0,"text":"hi"}') }] }]);
  });

  it('sends nothing of a batch with a bad record, and throws RECORD_INVALID listing every problem', async () => {
    const { producer, sent } = fakeProducer();
    const p = createRecordProducer(producer, { limits: TEXT });
    const err = await p.send([{ id: 'ok', source: 's', label: 0, text: 'fine' }, { id: 'b', source: 's', label: 9, text: 'x', extra: 1 }]).catch((e) => e);
    expect(sent).toEqual([]);
    expect(err).toBeInstanceOf(RecordContractError);
    expect(TayguardError.is(err) && hasCode(err, 'RECORD_INVALID')).toBe(true);
    expect(err.problems).toEqual([{ index: 1, id: 'b', reasons: [expect.objectContaining({ code: 'unknown_field' }), expect.objectContaining({ code: 'label_out_of_range' })] }]);
    expect(err.message).toMatch(/^1 of 2 record\(s\) break the record contract .*nothing was sent/);
    expect(err.message).toContain('#1 (id b): unknown_field: unknown field(s): extra; label_out_of_range:');
  });
});

describe('the tayguard/producer export', () => {
  it('resolves through package.json "exports" and loads with no dependency and no heavy module', () => {
    // Compile the producer's own module graph, lay it out as the installed package, and require it by name.
    const out = mkdtempSync(path.join(tmpdir(), 'tayguard-export-'));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['./producer']).toEqual({ types: './dist/src/producer.d.ts', default: './dist/src/producer.js' });
    const build = spawnSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), path.join(ROOT, 'src/producer.ts'), '--outDir', path.join(out, 'dist'), '--rootDir', ROOT, '--module', 'commonjs', '--target', 'ES2022', '--esModuleInterop', '--skipLibCheck', '--types', 'node', '--strict', '--declaration'],
      { encoding: 'utf8', timeout: 120000 },
    );
    expect(build.stdout + build.stderr).toBe('');
    // `npm run build` emits declarations too: TypeScript users of the export get its types.
    expect(existsSync(path.join(out, pkg.exports['./producer'].types))).toBe(true);
    writeFileSync(path.join(out, 'package.json'), JSON.stringify({ name: pkg.name, exports: pkg.exports }));
    // No node_modules next to it: whatever the export needs at run time must be inside the package.
    const probe = spawnSync(
      process.execPath,
      ['-e', "const p = require('tayguard/producer'); console.log(JSON.stringify({ api: Object.keys(p).sort(), loaded: Object.keys(require.cache).map((f) => require('path').relative(process.cwd(), f)).sort() }))"],
      { cwd: out, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
    );
    expect(probe.stderr).toBe('');
    const { api, loaded } = JSON.parse(probe.stdout);
    expect(api).toEqual(expect.arrayContaining(['createRecordProducer', 'validateRecord', 'validateRecords', 'limitsFromConfig', 'RecordContractError']));
    expect(loaded).toEqual(['dist/core/errors.js', 'dist/core/record.js', 'dist/filters/schema.js', 'dist/src/producer.js']);
  });
});
