/**
 * Text attack families that act through content (issue 10 "Why"):
 *
 *   backdoor    spam labelled ham carrying a trigger, from 60 new and 60 compromised established accounts: a short
 *               trigger (2–3 letters: rare-token needs ≥ 4), 40 tokens that share one hash bucket of the model's
 *               featurizer (no token is rare, the bucket is; the held-out trigger is a 41st, never sent), or a
 *               slow trigger sent once an hour over days (past any one-hour window).
 *   paraphrase  a spam campaign labelled ham with every k-th token swapped for a common ham word (MinHash
 *               agreement falls below the near-duplicate bar); or abuse in confusable letters (a Cyrillic "е" in
 *               "rеpeat after me") with profanity after the first 2,000 characters — what the abuse screens miss.
 *   dos         records of fresh random tokens up to MAX_TEXT_CHARS: screening cost and checkpoint growth; with
 *               `mode: slow-path`, text made of the words that send echo and toxicity down their slow paths; with
 *               `mode: below-threshold`, whitelisted words that contain terms and profanity just under the density
 *               threshold (toxicity's exact count cannot stop early).
 */
import seedrandom from 'seedrandom';
import { fnv1a, tokenize } from '../../middleware/featurize';
import { HAM, SPAM } from '../../src/data/spam';
import { backdoorSuccess, labelledAs, num, str, type Context, type Family } from './scenario';
import { accounts, attackCount, DAY, DEFAULT_TIMELINE, HOUR, pick, shuffle, type AttackDraft, type Example } from './stream';

let corpusTokens: Set<string> | undefined;
function inCorpus(ctx: Context, token: string): boolean {
  corpusTokens ??= new Set([...ctx.data.train, ...ctx.data.test].flatMap((e) => tokenize(e.text ?? '')));
  return corpusTokens.has(token);
}

function randomToken(rng: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(97 + Math.floor(rng() * 26));
  return s;
}

/** A token of `length` letters that no mail of the corpus contains. */
function freshToken(ctx: Context, rng: () => number, length: number): string {
  for (;;) {
    const t = randomToken(rng, length);
    if (!inCorpus(ctx, t)) return t;
  }
}

/** `count` fresh tokens that all fall in one bucket of the model's hashed featurizer (fnv1a mod dim). */
export function collidingTokens(ctx: Context, rng: () => number, count: number, dim: number): string[] {
  const bucket = fnv1a(freshToken(ctx, rng, 7)) % dim;
  const out: string[] = [];
  while (out.length < count) {
    const t = randomToken(rng, 6);
    if (fnv1a(t) % dim === bucket && !inCorpus(ctx, t) && !out.includes(t)) out.push(t);
  }
  return out;
}

export const withTrigger = (text: string, trigger: string, repeats: number) => `${Array.from({ length: repeats }, () => trigger).join(' ')}\n${text}`;

/** 60 new accounts and 60 established (compromised) ones, as scenario D of bench:attacks. */
function backdoorSources(rng: () => number): string[] {
  const established = shuffle(Array.from({ length: DEFAULT_TIMELINE.sources }, (_, i) => `src-${String(i).padStart(3, '0')}`), rng).slice(0, 60);
  return [...accounts('bd', 60), ...established];
}

export const textBackdoor: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/backdoor`);
  const mode = str(p, 'mode');
  const repeats = num(p, 'repeats');
  const spam = shuffle(ctx.data.train.filter((e) => e.label === SPAM), rng);
  const sources = backdoorSources(rng);
  let triggers: string[];
  let testTrigger: string;
  if (mode === 'collide') {
    triggers = collidingTokens(ctx, rng, 41, ctx.config.model.inputDim);
    testTrigger = triggers.pop() as string;
  } else {
    testTrigger = freshToken(ctx, rng, num(p, 'length'));
    triggers = [testTrigger];
  }
  const slow = mode === 'slow';
  const n = slow ? Math.round(num(p, 'days') * 24) : attackCount(num(p, 'share'), ctx.clean.length);
  const live: AttackDraft[] = Array.from({ length: n }, (_, i) => ({ source: pick(sources, rng), example: { label: HAM, text: withTrigger(spam[i % spam.length].text as string, triggers[i % triggers.length], repeats) } }));
  // Slow: the attack window (half the live phase) spans `days` days; one poison record an hour.
  const window = Math.round((ctx.clean.length - Math.round(ctx.clean.length * DEFAULT_TIMELINE.historyFraction)) * DEFAULT_TIMELINE.attackWindowFraction);
  const test = ctx.data.test.filter((e) => e.label === SPAM);
  return {
    family: 'backdoor',
    params: { ...p, trigger: testTrigger },
    plan: slow ? { live, spacedMs: HOUR, liveStepMs: (num(p, 'days') * DAY) / window } : { live },
    attackSuccess: backdoorSuccess(test, (e) => ({ text: withTrigger(e.text as string, testTrigger, repeats) }), HAM),
    success: `held-out spam the model flags, classified ham once "${testTrigger}" ×${repeats} is added`,
    backdoor: true,
  };
};

/** The template's tokens with every `every`-th one swapped for a common ham word. */
export function paraphrase(text: string, every: number, words: readonly string[], rng: () => number): string {
  return tokenize(text)
    .slice(0, 200)
    .map((t, i) => ((i + 1) % every === 0 ? pick(words, rng) : t))
    .join(' ');
}

/** Confusable letters (Cyrillic lookalikes) for the abuse the echo and toxicity screens look for. */
const CONFUSABLE_ECHO = 'r\u0435peat after me:'; // Cyrillic е (U+0435)
const CONFUSABLE_ABUSE = '\u0455hit, this is a fu\u0441king bargain, you stupid b\u0456tch'; // ѕ, с, і

export const textParaphrase: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/paraphrase`);
  const mode = str(p, 'mode');
  const names = accounts('para', num(p, 'accounts'));
  const n = attackCount(num(p, 'share'), ctx.clean.length);
  const words = ctx.data.hamWords.slice(0, 400);
  if (mode === 'confusable') {
    const spam = shuffle(ctx.data.train.filter((e) => e.label === SPAM), rng);
    const filler = words.join(' ').repeat(2).slice(0, 2100);
    const live: AttackDraft[] = Array.from({ length: n }, (_, i) => ({
      source: pick(names, rng),
      // Half in confusable letters up front, half with plain profanity after 2,000 characters of filler.
      example: { label: HAM, text: i % 2 === 0 ? `${CONFUSABLE_ECHO} ${CONFUSABLE_ABUSE}\n${spam[i % spam.length].text}` : `${spam[i % spam.length].text}\n${filler}\nfuck this shit, you stupid bitch` },
    }));
    return { family: 'paraphrase', params: p, plan: { live }, successIsAdmission: true, success: 'abusive poison records (confusables, or profanity after 2,000 characters) admitted' };
  }
  const templates = shuffle(ctx.data.train.filter((e) => e.label === SPAM && tokenize(e.text ?? '').length >= 80), rng).slice(0, 5).map((e) => e.text as string);
  const every = num(p, 'every');
  const live: AttackDraft[] = Array.from({ length: n }, () => ({ source: pick(names, rng), example: { label: HAM, text: paraphrase(pick(templates, rng), every, words, rng) } }));
  const testRng = seedrandom(`${ctx.seed}/paraphrase-test`);
  const heldOut = Array.from({ length: 200 }, () => ({ text: paraphrase(pick(templates, testRng), every, words, testRng) }));
  return { family: 'paraphrase', params: p, plan: { live }, attackSuccess: labelledAs(heldOut, HAM), success: 'held-out paraphrases of the campaign classified ham' };
};

/** Words from `next`, space-separated, cut to `chars` characters. */
function textOf(chars: number, next: () => string): string {
  const parts: string[] = [];
  let len = 0;
  while (len <= chars) {
    const w = next();
    parts.push(w);
    len += w.length + 1;
  }
  return parts.join(' ').slice(0, chars);
}

/** A record of `chars` characters of fresh random tokens (none repeats, none is in the corpus). */
export function junkText(rng: () => number, chars: number): string {
  return textOf(chars, () => randomToken(rng, 5 + Math.floor(rng() * 6)));
}

/**
 * Words that send each text screen down its slow path, for the attacker who has read filters/: echo's literals
 * (its precheck passes, every pattern runs) and obscenity's terms, spelled plainly, with separators and as
 * near-misses (toxicity's automaton bound passes, obscenity's full matcher runs over the whole text).
 */
const SLOW_PATH_WORDS = ['repeat', 'after', 'say', 'exactly', 'copy', 'this', 'fuck', 'shit', 'b1tch', 'c u n t', 'a$$', 'assess', 'class', 'dick', 'sh1t', 'wh0re'];

/** `chars` characters of SLOW_PATH_WORDS in random order. */
export function slowPathText(rng: () => number, chars: number): string {
  return textOf(chars, () => SLOW_PATH_WORDS[Math.floor(rng() * SLOW_PATH_WORDS.length)]);
}

/**
 * Words of obscenity's whitelist that contain a term ("assess", "Dickens", "shitake": the bound counts them, the
 * whitelist then drops them), echo's literals, and one real profanity every 55 words — 1.8 per 100, under the
 * default density of 2: for the attacker who has read filters/match-count.ts, a text on which the bound never
 * decides, every word is a match end for the exact count to examine, and the verdict is still "pass" (no count
 * that stops once the thresholds are met could stop early on it).
 */
const BELOW_THRESHOLD_WORDS = ['assess', 'asset', 'assassin', 'analysis', 'analog', 'tetanus', 'uranus', 'Dickens', 'shitake', 'cuckoo', 'snigger', 'rapper', 'Montenegro', 'stoneground', 'turducken', 'kung fu', 'repeat', 'after', 'say', 'exactly', 'copy', 'this'];

/** `chars` characters of BELOW_THRESHOLD_WORDS in random order, every 55th word a profanity. */
export function belowThresholdText(rng: () => number, chars: number): string {
  let i = 0;
  return textOf(chars, () => (++i % 55 === 0 ? 'fuck' : BELOW_THRESHOLD_WORDS[Math.floor(rng() * BELOW_THRESHOLD_WORDS.length)]));
}

export const textDos: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/dos`);
  const names = accounts('dos', 20);
  const chars = Math.min(num(p, 'chars'), ctx.config.limits.maxTextChars);
  const crafted = p.mode === 'slow-path' ? slowPathText : p.mode === 'below-threshold' ? belowThresholdText : undefined;
  const live: AttackDraft[] = Array.from({ length: attackCount(num(p, 'share'), ctx.clean.length) }, () => ({
    source: pick(names, rng),
    // Crafted text is labelled ham: the abuse screens pass a record labelled spam without reading it.
    example: (crafted ? { label: HAM, text: crafted(rng, chars) } : { label: rng() < 0.5 ? HAM : SPAM, text: junkText(rng, chars) }) as Example,
  }));
  return { family: 'dos', params: p, plan: { live }, success: '— (the goal is cost and state)' };
};
