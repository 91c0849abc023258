/**
 * Text attack families that act through labels, time and identities (issue 10 "Why", as a red-teamer who has read
 * the code would send them — only through Kafka records and POST /v1/predict):
 *
 *   oracle-flood  aged accounts send correct mails days early, then spam labelled ham, each padded with common ham
 *                 words until the public model says p(ham) ≥ threshold (padUntilAccepted) within an oracle budget;
 *                 `placement: spread` with `windows` spreads the padding so that every window reads as ham too.
 *   reverse-flood the mirror image: aged accounts report honest-looking mail (held-out-like ham) as spam, to make
 *                 the model block honest mail — and, with influence by content on, to have honest users' ham
 *                 of that kind discounted as "abusive content labelled acceptable".
 *   clock-hijack  a few records dated far from now — in the record's `ts` only, or in the Kafka CreateTime too
 *                 (a producer sets it; the broker bounds it only if log.message.timestamp.difference.max.ms is set)
 *                 — then an unpadded spam→ham flood from new accounts, which a frozen event clock would favour.
 *   framing       evasion lock: a spam campaign carries "Repeat after me:" or profanity, so honest users'
 *                 spam reports of it trip the abuse screens (and cost them trust) and the model never learns it;
 *                 or a stream of one-record accounts with near-duplicate mails to raise new-user quarantine.
 *   sybil-flush   more one-record accounts than the trust registry keeps, to flush honest accounts' history.
 */
import seedrandom from 'seedrandom';
import { HAM, SPAM } from '../../src/data/spam';
import { parseDetectorSettings } from '../../filters/config';
import { padUntilAccepted } from './oracle';
import { labelledAs, num, str, type Context, type Family, type Scenario } from './scenario';
import { accounts, attackCount, pick, shuffle, type AttackDraft, type Example } from './stream';

const WARMUP_PER_ACCOUNT = 5;

function spamOf(ctx: Context, rng: () => number): Example[] {
  return shuffle(ctx.data.train.filter((e) => e.label === SPAM), rng);
}

/** Correct records (training mails with their true label) for each account, to age it. */
function warmups(ctx: Context, names: readonly string[], rng: () => number): AttackDraft[] {
  const pool = ctx.data.train;
  return names.flatMap((source) => Array.from({ length: WARMUP_PER_ACCOUNT }, () => ({ source, example: pick(pool, rng), role: 'attacker' as const })));
}

/** Held-out spam: the flood's goal is to have it pass as ham. */
function heldOutSpam(ctx: Context) {
  return ctx.data.test.filter((e) => e.label === SPAM);
}

export const oracleFlood: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/oracle-flood`);
  const names = accounts('aged', num(p, 'accounts'));
  const spam = spamOf(ctx, rng);
  const n = attackCount(num(p, 'share'), ctx.clean.length);
  const words = ctx.data.hamWords.slice(0, 400);
  const attacker = { sent: 0, reached: 0, queries: 0, padWords: 0 };
  const live: AttackDraft[] = Array.from({ length: n }, (_, i) => {
    const base = spam[i % spam.length].text as string;
    const own = seedrandom(`${ctx.seed}/oracle-flood/${i}`);
    return {
      source: pick(names, rng),
      build: async (oracle) => {
        const r = await padUntilAccepted(base, oracle, {
          threshold: num(p, 'threshold'),
          budget: num(p, 'budget'),
          wanted: HAM,
          // Each record its own order of the same common words, so no two are near-duplicates.
          words: shuffle(words, own),
          firstPad: 16,
          maxChars: ctx.config.limits.maxTextChars,
          placement: p.placement === 'spread' ? 'spread' : 'append',
          windows: typeof p.windows === 'number' ? p.windows : 0,
          readChars: ctx.config.limits.textReadChars,
        });
        attacker.sent += 1;
        attacker.reached += r.reached ? 1 : 0;
        attacker.queries += r.queries;
        attacker.padWords += r.padWords;
        return { label: HAM, text: r.text };
      },
    };
  });
  return {
    family: 'oracle-flood',
    params: p,
    plan: { live, warmup: warmups(ctx, names, rng), ageDays: num(p, 'ageDays') },
    http: true,
    attackSuccess: labelledAs(heldOutSpam(ctx), HAM),
    success: 'held-out spam classified ham',
    attacker,
  };
};

export const reverseFlood: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/reverse-flood`);
  const names = accounts('aged', num(p, 'accounts'));
  const ham = shuffle(ctx.data.train.filter((e) => e.label === HAM), rng);
  const n = attackCount(num(p, 'share'), ctx.clean.length);
  const live: AttackDraft[] = Array.from({ length: n }, (_, i) => ({ source: pick(names, rng), example: { label: SPAM, text: ham[i % ham.length].text } }));
  return {
    family: 'reverse-flood',
    params: p,
    plan: { live, warmup: warmups(ctx, names, rng), ageDays: num(p, 'ageDays') },
    attackSuccess: labelledAs(ctx.data.test.filter((e) => e.label === HAM), SPAM),
    success: 'held-out ham classified spam',
  };
};

export const clockHijack: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/clock-hijack`);
  const offset = num(p, 'offsetDays') * 24 * 3600_000;
  const kafka = str(p, 'mode') === 'kafka-ts';
  const hijack: AttackDraft[] = accounts('clock', num(p, 'hijackers')).map((source) => ({
    source,
    example: pick(ctx.data.train, rng),
    recordOffsetMs: offset,
    ...(kafka ? { kafkaOffsetMs: offset } : {}),
  }));
  const names = accounts('flood', num(p, 'accounts'));
  const spam = spamOf(ctx, rng);
  const flood: AttackDraft[] = Array.from({ length: attackCount(num(p, 'share'), ctx.clean.length) - hijack.length }, (_, i) => ({ source: pick(names, rng), example: { label: HAM, text: spam[i % spam.length].text } }));
  return {
    family: 'clock-hijack',
    params: p,
    plan: { live: [...hijack, ...flood] },
    attackSuccess: labelledAs(heldOutSpam(ctx), HAM),
    success: 'held-out spam classified ham (the flood after the hijack)',
  };
};

const EVERYDAY = ['hello', 'meeting', 'today', 'thanks', 'please', 'see', 'attached', 'regards', 'offer', 'free'];
const LOCKS: Record<string, string> = {
  /** Not an attack: the same campaign without a lock, for reference (what honest reports teach when admitted). */
  'no-lock': '',
  'lock-echo': 'Repeat after me:',
  'lock-toxic': 'this shit is a fucking bargain',
};

/** A spam campaign the model has never seen: 40 fresh tokens, 25 of them per mail, a few everyday words, the lock. */
export function campaignMail(rng: () => number, lock: string, vocabSeed: string): string {
  const vocab = Array.from({ length: 40 }, (_, i) => `zq${fnvLike(`${vocabSeed}/${i}`).toString(36)}x`);
  const words = [...Array.from({ length: 25 }, () => pick(vocab, rng)), ...Array.from({ length: 6 }, () => pick(EVERYDAY, rng))];
  return `${lock} ${shuffle(words, rng).join(' ')}`.trim();
}

function fnvLike(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export const framing: Family = (ctx, p) => {
  const rng = seedrandom(`${ctx.seed}/framing`);
  const mode = str(p, 'mode');
  const n = attackCount(num(p, 'share'), ctx.clean.length);
  if (mode === 'new-users') {
    // One-record accounts, near-duplicates of one ordinary ham mail (the shape of a burst of new users).
    const template = pick(ctx.data.train.filter((e) => e.label === HAM && (e.text ?? '').length > 200), rng).text as string;
    const live = accounts('oneshot', n).map((source, i) => ({ source, example: { label: HAM, text: `${template}\n${i}` } }));
    return { family: 'framing', params: p, plan: { live }, success: '— (the goal is honest new users quarantined)' };
  }
  const lock = LOCKS[mode];
  if (lock === undefined) throw new Error(`framing: unknown mode ${mode}`);
  const vocabSeed = `${ctx.seed}/campaign`;
  // Honest, established users report the campaign as spam: their records are honest.
  const reporters = shuffle(Array.from({ length: 300 }, (_, i) => `src-${String(i).padStart(3, '0')}`), rng).slice(0, 100);
  const honestLive: AttackDraft[] = Array.from({ length: n }, () => ({ source: pick(reporters, rng), example: { label: SPAM, text: campaignMail(rng, lock, vocabSeed) } }));
  const testRng = seedrandom(`${ctx.seed}/campaign-test`);
  const heldOut = Array.from({ length: 200 }, () => ({ text: campaignMail(testRng, lock, vocabSeed) }));
  return {
    family: 'framing',
    params: p,
    plan: { live: [], honestLive },
    attackSuccess: labelledAs(heldOut, HAM),
    success: 'held-out campaign mails (carrying the lock) classified ham',
  };
};

export const sybilFlush: Family = (ctx, p) => {
  // More accounts than the registry keeps, all within five minutes of event time at the attack window's start:
  // every honest account's history is pushed out, and those that come back come back as new.
  const total = parseDetectorSettings(ctx.config.screens.settings).trust.maxSources + num(p, 'extraAccounts');
  const live = accounts('flush', total).map((source) => ({ source, example: { label: HAM, text: 'hi' }, screenOnly: true }));
  return { family: 'sybil-flush', params: { ...p, accounts: total }, plan: { live, spacedMs: (5 * 60_000) / total }, success: '— (the goal is honest trust lost)' };
};
