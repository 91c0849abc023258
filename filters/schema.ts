/**
 * Schema and bounds: the first screen. Turns bytes into a TrainingRecord or into reasons, never throws:
 * bad input must neither stop the consumer nor vanish (it goes to the quarantine topic with these reasons).
 */
import { TextDecoder } from 'node:util';
import { MAX_ID_LENGTH, type RawMessage, type SourceMeta, type TrainingRecord } from '../core/record';
import type { Reason } from './types';

export interface SchemaLimits {
  readonly numClasses: number;
  /** Required length of `features`; undefined when the model reads text. */
  readonly featureDim?: number;
  readonly task: 'text' | 'dense';
  readonly maxTextChars: number;
  /**
   * Texts are cut to their first this many characters (TEXT_READ_CHARS; never inside a surrogate pair): what
   * training, the screens and predictions read, so screening cost is linear in a capped input and no stage sees
   * text the model does not learn from. Unset: the whole text (up to maxTextChars).
   */
  readonly textReadChars?: number;
  readonly maxMessageBytes: number;
  /**
   * Largest |feature| accepted (MAX_FEATURE_ABS, default 1e6). A value like 1e20 is finite in float64 but overflows
   * float32 arithmetic in training (its square is Infinity), so it is refused here, before it reaches a step.
   */
  readonly maxFeatureAbs?: number;
}

export const DEFAULT_MAX_FEATURE_ABS = 1e6;

export type ParseResult =
  | { readonly ok: true; readonly record: TrainingRecord; /** The text's length before it was cut to textReadChars. */ readonly cutFrom?: number }
  | { readonly ok: false; readonly reasons: readonly Reason[] };

const STAGE = 'schema';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const ALLOWED = new Set(['id', 'source', 'ts', 'label', 'text', 'features', 'sourceMeta']);
const META_KEYS = new Set(['createdAt', 'verified']);
/** ISO 8601 date-time with an explicit zone: `Date.parse` alone accepts locale formats whose meaning varies. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const reason = (code: string, message: string): Reason => ({ stage: STAGE, code, message });

/** The first `chars` characters of a text, one fewer when the cut would split a surrogate pair. */
export function readPart(text: string, chars: number | undefined): string {
  if (chars === undefined || text.length <= chars) return text;
  const c = text.charCodeAt(chars - 1);
  return text.slice(0, c >= 0xd800 && c <= 0xdbff ? chars - 1 : chars);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseRecord(raw: Pick<RawMessage, 'value'>, limits: SchemaLimits): ParseResult {
  const fail = (...reasons: Reason[]): ParseResult => ({ ok: false, reasons });
  const bytes = raw.value;
  if (bytes === null || bytes.length === 0) return fail(reason('empty_message', 'message value is empty (a tombstone?)'));
  if (bytes.length > limits.maxMessageBytes) {
    return fail(reason('message_too_large', `message is ${bytes.length} bytes; the limit is ${limits.maxMessageBytes} (MAX_MESSAGE_BYTES)`));
  }
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return fail(reason('invalid_utf8', 'message value is not valid UTF-8'));
  }
  let value: unknown;
  try {
    // JSON.parse turns 1e999 into Infinity; non-finite numbers are caught below.
    value = JSON.parse(text);
  } catch (e) {
    return fail(reason('invalid_json', `message value is not JSON: ${(e as Error).message}`));
  }
  if (!isPlainObject(value)) return fail(reason('not_an_object', 'message value must be a JSON object'));

  const reasons: Reason[] = [];
  const unknown = Object.keys(value).filter((k) => !ALLOWED.has(k));
  if (unknown.length > 0) reasons.push(reason('unknown_field', `unknown field(s): ${unknown.slice(0, 5).join(', ')}`));

  const { id, source, ts, label, text: body, features, sourceMeta } = value;
  if (typeof id !== 'string' || id.length === 0) reasons.push(reason('invalid_id', '"id" must be a non-empty string'));
  else if (id.length > MAX_ID_LENGTH) reasons.push(reason('invalid_id', `"id" is ${id.length} chars; at most ${MAX_ID_LENGTH}`));
  if (typeof source !== 'string' || source.length === 0 || source.length > 256) {
    reasons.push(reason('invalid_source', '"source" must be a string of 1 to 256 chars (the account or user id)'));
  } else if (source.startsWith('__tayguard')) {
    // Reserved for the audit's canaries: a producer must not be able to pose as them.
    reasons.push(reason('reserved_source', 'sources starting with "__tayguard" are reserved for tayguard itself'));
  }
  if (ts !== undefined && !(typeof ts === 'number' && Number.isSafeInteger(ts) && ts >= 0)) {
    reasons.push(reason('invalid_ts', '"ts" must be epoch milliseconds (a non-negative integer) when present'));
  }
  if (typeof label !== 'number' || !Number.isInteger(label)) {
    reasons.push(reason('invalid_label', '"label" must be an integer class index'));
  } else if (label < 0 || label >= limits.numClasses) {
    reasons.push(reason('label_out_of_range', `"label" ${label} is outside 0..${limits.numClasses - 1} (NUM_CLASSES=${limits.numClasses})`));
  }

  if (sourceMeta !== undefined) reasons.push(...checkSourceMeta(sourceMeta));

  const hasText = body !== undefined;
  const hasFeatures = features !== undefined;
  if (hasText === hasFeatures) {
    reasons.push(reason('invalid_payload', 'exactly one of "text" or "features" must be present'));
  } else if (hasText) {
    if (typeof body !== 'string') reasons.push(reason('invalid_text', '"text" must be a string'));
    else if (limits.task !== 'text') reasons.push(reason('wrong_payload', 'this model reads "features", not "text" (MODEL=dense)'));
    else if (body.length > limits.maxTextChars) {
      reasons.push(reason('text_too_long', `"text" is ${body.length} chars; the limit is ${limits.maxTextChars} (MAX_TEXT_CHARS)`));
    }
  } else if (!Array.isArray(features)) {
    reasons.push(reason('invalid_features', '"features" must be an array of numbers'));
  } else if (limits.task !== 'dense') {
    reasons.push(reason('wrong_payload', 'this model reads "text", not "features" (MODEL=text)'));
  } else if (features.length !== limits.featureDim) {
    reasons.push(reason('wrong_feature_length', `"features" has ${features.length} values; the model expects ${limits.featureDim} (FEATURE_DIM)`));
  } else if (!features.every((f) => typeof f === 'number' && Number.isFinite(f))) {
    reasons.push(reason('non_finite_feature', '"features" must hold finite numbers only'));
  } else {
    const bound = limits.maxFeatureAbs ?? DEFAULT_MAX_FEATURE_ABS;
    const at = features.findIndex((f) => Math.abs(f as number) > bound);
    if (at >= 0) {
      reasons.push(reason('feature_out_of_range', `"features"[${at}] is ${features[at]}; |value| must be at most ${bound} (MAX_FEATURE_ABS): scale the features before producing`));
    }
  }

  if (reasons.length > 0) return { ok: false, reasons };
  const record: TrainingRecord = {
    id: id as string,
    source: source as string,
    label: label as number,
    ...(ts !== undefined ? { ts: ts as number } : {}),
    ...(sourceMeta !== undefined ? { sourceMeta: sourceMeta as SourceMeta } : {}),
    ...(hasText ? { text: readPart(body as string, limits.textReadChars) } : { features: features as number[] }),
  };
  const cut = hasText && record.text !== body;
  return cut ? { ok: true, record, cutFrom: (body as string).length } : { ok: true, record };
}

/**
 * `sourceMeta`: the deployment's word on the account (filters/source-registry.ts). Strict, because trust acts on it:
 * a misspelt key or a date in a local format would silently count as "no statement".
 */
function checkSourceMeta(meta: unknown): Reason[] {
  const bad = (message: string) => [reason('invalid_source_meta', message)];
  if (!isPlainObject(meta)) return bad('"sourceMeta" must be an object like {"createdAt": "2024-03-01T12:00:00Z", "verified": true}');
  const unknown = Object.keys(meta).filter((k) => !META_KEYS.has(k));
  if (unknown.length > 0) return bad(`unknown "sourceMeta" field(s): ${unknown.slice(0, 5).join(', ')} (allowed: createdAt, verified)`);
  const { createdAt, verified } = meta;
  if (createdAt !== undefined && !(typeof createdAt === 'string' && ISO_TIME.test(createdAt) && Number.isFinite(Date.parse(createdAt)))) {
    return bad('"sourceMeta.createdAt" must be an ISO 8601 time with a zone, like "2024-03-01T12:00:00Z"');
  }
  if (verified !== undefined && typeof verified !== 'boolean') return bad('"sourceMeta.verified" must be true or false');
  return [];
}
