/**
 * The attacker's oracle: the public prediction endpoint, and nothing else. `publicPredict` POSTs to the sidecar's
 * own /v1/predict (the real express app, its validation and per-client rate limit) and returns exactly what it
 * answers for each input — today `{ label, probabilities }`; with a labels-only or coarsened mode the attacker
 * gets whatever that mode returns, so `padUntilAccepted` falls back to the label when probabilities are absent.
 *
 * `padUntilAccepted` is the red-teamer's label-flip trick of issue 10: take a spam mail, label it ham, and pad it
 * with common ham words until the served model's p(ham) reaches a threshold chosen just above what the
 * label-consistency screen would object to — spending at most `budget` oracle queries per record (doubling the
 * padding each query, the cheapest search for a monotone-ish response).
 *
 * `placement: 'spread'` with `windows` is the attacker who has read train/content-weight.ts (and the witness's
 * parts rule): appended padding leaves the spam windows spam, so it spreads the padding words evenly between the
 * spam tokens (cycling the word list when it needs more) and asks the oracle about the whole text AND each of its
 * `windows`-token windows over the part tayguard reads (`readChars`), accepting only when every one of them gets
 * the wanted label at the threshold. One query is one POST with the text and its windows.
 */
import { textWindows } from '../../filters/witness';
import type { Oracle, Payload, PublicPrediction } from './stream';

/** POST /v1/predict on a running sidecar; a 429 (rate limit) waits and retries, as a patient attacker would. */
export async function publicPredict(baseUrl: string, inputs: readonly Payload[]): Promise<PublicPrediction[]> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${baseUrl}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: inputs }) });
    if (res.status === 429 && attempt < 20) {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    if (!res.ok) throw new Error(`POST /v1/predict answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const body = (await res.json()) as { predictions: PublicPrediction[] };
    return body.predictions;
  }
}

export interface PaddingOptions {
  /** Accept when the public model gives the wanted label at least this probability (or, labels only, names it). */
  readonly threshold: number;
  /** Oracle queries (records predicted) allowed for this record. */
  readonly budget: number;
  readonly wanted: number;
  /** Words to pad with, most useful first; each query takes the next `size` of them. */
  readonly words: readonly string[];
  /** Padding words at the first padded query (doubled after each). */
  readonly firstPad: number;
  /** Largest text the attacker sends (MAX_TEXT_CHARS). */
  readonly maxChars: number;
  /** Where the padding goes: after the text (default) or spread evenly between its tokens. */
  readonly placement?: 'append' | 'spread';
  /** With > 0: also ask about every window of this many tokens (stepping by half) over the first `readChars`. */
  readonly windows?: number;
  /** The characters tayguard reads (TEXT_READ_CHARS); windows beyond are never judged. */
  readonly readChars?: number;
}

export interface PaddingResult {
  readonly text: string;
  readonly queries: number;
  /** The oracle said the wanted label at the threshold for the text returned. */
  readonly reached: boolean;
  readonly padWords: number;
}

export function accepted(p: PublicPrediction, o: Pick<PaddingOptions, 'threshold' | 'wanted'>): boolean {
  if (p.probabilities) return (p.probabilities[o.wanted] ?? 0) >= o.threshold;
  return p.label === o.wanted;
}

function padded(base: string, words: readonly string[], n: number, maxChars: number, placement: 'append' | 'spread' = 'append'): string {
  if (n === 0) return base;
  if (placement === 'append') {
    const text = `${base}\n${words.slice(0, n).join(' ')}`;
    return text.length <= maxChars ? text : text.slice(0, maxChars);
  }
  // Spread: the i-th of n padding words goes after base token ⌊i·m/n⌋, so every stretch of the text gets its share.
  const tokens = base.split(/\s+/).filter((t) => t.length > 0);
  const out: string[] = [];
  let w = 0;
  tokens.forEach((t, j) => {
    out.push(t);
    const upto = Math.floor(((j + 1) * n) / tokens.length);
    for (; w < upto; w++) out.push(words[w % words.length]);
  });
  const text = out.join(' ');
  return text.length <= maxChars ? text : text.slice(0, maxChars);
}

/** The payloads one query asks about: the text, and its windows when the attacker mimics a windowed judge. */
function queryOf(text: string, o: PaddingOptions): Payload[] {
  if (!o.windows) return [{ text }];
  const read = text.slice(0, o.readChars ?? text.length);
  return [{ text }, ...textWindows(read, o.windows, read.length).map((w) => ({ text: w }))];
}

/**
 * Pad `base` until the oracle accepts it or the budget is spent: query 0 words, then firstPad, 2·firstPad, …
 * (never past `words` or maxChars). With budget 0 the record is sent with one blind guess at padding (firstPad
 * words). Returns the first accepted text, or the last one tried.
 */
export async function padUntilAccepted(base: string, oracle: Oracle, o: PaddingOptions): Promise<PaddingResult> {
  const spread = o.placement === 'spread';
  // Spread padding may cycle the word list; appended padding uses each word once.
  const most = spread ? Number.MAX_SAFE_INTEGER : o.words.length;
  if (o.budget <= 0) return { text: padded(base, o.words, o.firstPad, o.maxChars, o.placement), queries: 0, reached: false, padWords: Math.min(o.firstPad, most) };
  let n = 0;
  let last = { text: base, n: 0 };
  for (let q = 1; q <= o.budget; q++) {
    const text = padded(base, o.words, n, o.maxChars, o.placement);
    last = { text, n };
    const answers = await oracle(queryOf(text, o));
    if (answers.every((p) => accepted(p, o))) return { text, queries: q, reached: true, padWords: n };
    if (n >= most || text.length >= o.maxChars) return { text, queries: q, reached: false, padWords: n };
    n = n === 0 ? Math.min(o.firstPad, most) : Math.min(2 * n, most);
  }
  return { text: last.text, queries: o.budget, reached: false, padWords: last.n };
}
