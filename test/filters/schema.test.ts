import { parseRecord, type SchemaLimits } from '../../filters/schema';

const text: SchemaLimits = { numClasses: 2, task: 'text', maxTextChars: 50, maxMessageBytes: 1024 };
const dense: SchemaLimits = { numClasses: 3, task: 'dense', featureDim: 3, maxTextChars: 50, maxMessageBytes: 1024 };
const msg = (v: unknown) => ({ value: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)) });
const codes = (r: ReturnType<typeof parseRecord>) => (r.ok ? [] : r.reasons.map((x) => x.code));

describe('schema and bounds screen', () => {
  it('accepts a valid text record and keeps only contract fields', () => {
    const r = parseRecord(msg({ id: 'a', source: 'alice', ts: 1700000000000, label: 1, text: 'hello' }), text);
    expect(r).toEqual({ ok: true, record: { id: 'a', source: 'alice', ts: 1700000000000, label: 1, text: 'hello' } });
  });

  it("accepts the deployment's sourceMeta (account creation time, verified flag) and keeps it on the record", () => {
    const sourceMeta = { createdAt: '2024-03-01T12:00:00.000+01:00', verified: true };
    const r = parseRecord(msg({ id: 'a', source: 'alice', label: 1, text: 'hello', sourceMeta }), text);
    expect(r).toEqual({ ok: true, record: { id: 'a', source: 'alice', label: 1, text: 'hello', sourceMeta } });
    expect(parseRecord(msg({ id: 'a', source: 'alice', label: 1, text: 'hello', sourceMeta: {} }), text).ok).toBe(true);
  });

  it('accepts a valid features record', () => {
    expect(parseRecord(msg({ id: 'a', source: 's', label: 2, features: [0, -1.5, 3e5] }), dense).ok).toBe(true);
  });

  // Issue 14: 1e20 is finite in float64 but its square overflows float32 in the gradient norm and stopped the consumer.
  it('refuses features beyond MAX_FEATURE_ABS (default 1e6) with feature_out_of_range, and honours a larger bound', () => {
    for (const big of [1e20, -1e20, 1e308, 1e6 + 1]) {
      expect(codes(parseRecord(msg({ id: 'a', source: 's', label: 0, features: [0, big, 1] }), dense))).toEqual(['feature_out_of_range']);
    }
    expect(parseRecord(msg({ id: 'a', source: 's', label: 0, features: [0, 1e6, -1e6] }), dense).ok).toBe(true);
    expect(parseRecord(msg({ id: 'a', source: 's', label: 0, features: [0, 3e10, 1] }), { ...dense, maxFeatureAbs: 1e12 }).ok).toBe(true);
  });

  it.each([
    ['invalid JSON', msg('{"id": "x",'), text, 'invalid_json'],
    ['non-UTF-8 bytes', { value: Buffer.from([0x7b, 0xff, 0x7d]) }, text, 'invalid_utf8'],
    ['empty value', { value: null }, text, 'empty_message'],
    ['JSON array', msg([1, 2]), text, 'not_an_object'],
    ['missing id', msg({ source: 's', label: 0, text: 'x' }), text, 'invalid_id'],
    ['id too long', msg({ id: 'x'.repeat(129), source: 's', label: 0, text: 'x' }), text, 'invalid_id'],
    ['numeric source', msg({ id: 'a', source: 5, label: 0, text: 'x' }), text, 'invalid_source'],
    ['a source posing as the audit', msg({ id: 'a', source: '__tayguard_audit__', label: 0, text: 'x' }), text, 'reserved_source'],
    ['string label', msg({ id: 'a', source: 's', label: '1', text: 'x' }), text, 'invalid_label'],
    ['fractional label', msg({ id: 'a', source: 's', label: 0.5, text: 'x' }), text, 'invalid_label'],
    ['label out of range', msg({ id: 'a', source: 's', label: 2, text: 'x' }), text, 'label_out_of_range'],
    ['negative label', msg({ id: 'a', source: 's', label: -1, text: 'x' }), text, 'label_out_of_range'],
    ['both text and features', msg({ id: 'a', source: 's', label: 0, text: 'x', features: [1, 2, 3] }), text, 'invalid_payload'],
    ['neither text nor features', msg({ id: 'a', source: 's', label: 0 }), text, 'invalid_payload'],
    ['text too long', msg({ id: 'a', source: 's', label: 0, text: 'x'.repeat(51) }), text, 'text_too_long'],
    ['message too large', msg({ id: 'a', source: 's', label: 0, text: 'x'.repeat(2000) }), text, 'message_too_large'],
    ['features sent to a text model', msg({ id: 'a', source: 's', label: 0, features: [1, 2, 3] }), text, 'wrong_payload'],
    ['wrong feature length', msg({ id: 'a', source: 's', label: 0, features: [1, 2] }), dense, 'wrong_feature_length'],
    ['non-finite feature (1e999)', msg('{"id":"a","source":"s","label":0,"features":[1,1e999,2]}'), dense, 'non_finite_feature'],
    ['string feature', msg({ id: 'a', source: 's', label: 0, features: [1, '2', 3] }), dense, 'non_finite_feature'],
    ['bad ts', msg({ id: 'a', source: 's', label: 0, text: 'x', ts: 'yesterday' }), text, 'invalid_ts'],
    ['unknown field', msg({ id: 'a', source: 's', label: 0, text: 'x', admin: true }), text, 'unknown_field'],
    ['sourceMeta not an object', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: 'verified' }), text, 'invalid_source_meta'],
    ['sourceMeta with an unknown key', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: { trusted: true } }), text, 'invalid_source_meta'],
    ['sourceMeta.createdAt in a local format', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: { createdAt: '03/01/2024' } }), text, 'invalid_source_meta'],
    ['sourceMeta.createdAt without a zone', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: { createdAt: '2024-03-01T12:00:00' } }), text, 'invalid_source_meta'],
    ['sourceMeta.createdAt not a date', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: { createdAt: '2024-13-45T99:00:00Z' } }), text, 'invalid_source_meta'],
    ['sourceMeta.verified as a string', msg({ id: 'a', source: 's', label: 0, text: 'x', sourceMeta: { verified: 'yes' } }), text, 'invalid_source_meta'],
  ])('quarantines %s with a reason', (_name, raw, limits, code) => {
    const r = parseRecord(raw as { value: Buffer | null }, limits);
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain(code);
    if (!r.ok) for (const reason of r.reasons) expect(reason).toEqual({ stage: 'schema', code: expect.any(String), message: expect.any(String) });
  });

  it('reports every problem of a record, not only the first', () => {
    expect(codes(parseRecord(msg({ id: '', source: '', label: 9 }), text))).toEqual(
      expect.arrayContaining(['invalid_id', 'invalid_source', 'label_out_of_range', 'invalid_payload']),
    );
  });
});
