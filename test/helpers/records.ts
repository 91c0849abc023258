/** Synthetic record streams for integration tests: valid text records plus malformed messages of many kinds. */
import seedrandom from 'seedrandom';

const HAM = 'meeting agenda lunch project report schedule notes review team update plan call'.split(' ');
const SPAM = 'free money win prize cheap pills offer click now guaranteed cash bonus'.split(' ');

export interface StreamMessage {
  readonly key: string | null;
  readonly value: string | Buffer;
}

export function validRecord(i: number, rng: () => number, prefix = 'r'): StreamMessage {
  const label = i % 2;
  const words = label === 1 ? SPAM : HAM;
  const text = Array.from({ length: 6 + Math.floor(rng() * 10) }, () => words[Math.floor(rng() * words.length)]).join(' ');
  const source = `user-${Math.floor(rng() * 200)}`;
  return { key: source, value: JSON.stringify({ id: `${prefix}-${i}`, source, ts: 1_700_000_000_000 + i, label, text }) };
}

/** Ten ways to get a record wrong, with the reason code each must be quarantined under. */
export const MALFORMED: readonly { code: string; make(i: number): string | Buffer }[] = [
  { code: 'invalid_json', make: (i) => `{"id": "bad-${i}", "source": "x", ` },
  { code: 'invalid_utf8', make: () => Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0xc3, 0x28, 0x7d]) },
  { code: 'invalid_label', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 'x', text: 'no label' }) },
  { code: 'label_out_of_range', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 'x', label: 5, text: 'x' }) },
  { code: 'invalid_id', make: (i) => JSON.stringify({ id: 'i'.repeat(129 + (i % 5)), source: 'x', label: 0, text: 'x' }) },
  { code: 'invalid_source', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 42, label: 0, text: 'x' }) },
  { code: 'invalid_payload', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 'x', label: 0 }) },
  { code: 'wrong_payload', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 'x', label: 0, features: [1, 1e308, 2] }) },
  { code: 'text_too_long', make: (i) => JSON.stringify({ id: `bad-${i}`, source: 'x', label: 0, text: 'spam '.repeat(1000) }) },
  { code: 'not_an_object', make: () => '"just a string"' },
];

export function mixedStream(n: number, malformedEvery: number, seed = 'stream'): { messages: StreamMessage[]; malformed: number; expectedCodes: Map<string, number> } {
  const rng = seedrandom(seed);
  const messages: StreamMessage[] = [];
  const expectedCodes = new Map<string, number>();
  let malformed = 0;
  for (let i = 0; i < n; i++) {
    if (i % malformedEvery === malformedEvery - 1) {
      const kind = MALFORMED[malformed % MALFORMED.length];
      messages.push({ key: null, value: kind.make(i) });
      expectedCodes.set(kind.code, (expectedCodes.get(kind.code) ?? 0) + 1);
      malformed += 1;
    } else {
      messages.push(validRecord(i, rng));
    }
  }
  return { messages, malformed, expectedCodes };
}

/** A dense record of FEATURE_DIM=dim features whose label is the sign of the first feature (learnable). */
export function denseRecord(i: number, rng: () => number, dim = 4, prefix = 'd'): StreamMessage {
  const features = Array.from({ length: dim }, () => Math.round((rng() * 2 - 1) * 1000) / 1000);
  const label = features[0] > 0 ? 1 : 0;
  const source = `user-${Math.floor(rng() * 50)}`;
  return { key: source, value: JSON.stringify({ id: `${prefix}-${i}`, source, label, features }) };
}

/** A dense record with one huge feature (a poison pill for float32 training). */
export function poisonRecord(i: number, magnitude: number, dim = 4, prefix = 'p'): StreamMessage {
  const features = Array.from({ length: dim }, (_, j) => (j === 1 ? magnitude : 0.5));
  return { key: 'pill', value: JSON.stringify({ id: `${prefix}-${i}`, source: 'pill', label: 1, features }) };
}
