/**
 * The attack families and the parameter grid the attacker searches in each (on the tuning seeds). The first
 * setting of each grid is the one issue 10 reports (or the closest); --quick runs only that one.
 */
import { clockHijack, framing, oracleFlood, reverseFlood, sybilFlush } from './text-floods';
import { textBackdoor, textDos, textParaphrase } from './text-content';
import { denseBackdoor, denseFlip } from './dense-attacks';
import type { Kind } from './harness';
import type { Family, Params } from './scenario';

export interface FamilySpec {
  readonly name: string;
  readonly kind: Kind;
  readonly build: Family;
  readonly grid: readonly Params[];
  /** Why the family is not judged against the targets (they are stated for ≤ 20% poisoned traffic). */
  readonly notJudged?: string;
}

export const FAMILIES: readonly FamilySpec[] = [
  {
    name: 'oracle-flood',
    kind: 'text',
    build: oracleFlood,
    grid: [
      { share: 0.2, accounts: 10, ageDays: 2, budget: 8, threshold: 0.32 },
      { share: 0.2, accounts: 200, ageDays: 2, budget: 8, threshold: 0.32 },
      { share: 0.2, accounts: 10, ageDays: 7, budget: 8, threshold: 0.5 },
      // The patient attacker who read INFLUENCE_MATURE_DAYS: accounts created a month before they flood.
      { share: 0.2, accounts: 200, ageDays: 30, budget: 8, threshold: 0.32 },
      // …who has also read train/content-weight.ts: padding spread so that every 40-token window reads as ham.
      { share: 0.2, accounts: 200, ageDays: 30, budget: 8, threshold: 0.5, placement: 'spread', windows: 40 },
    ],
  },
  {
    name: 'reverse-flood',
    kind: 'text',
    build: reverseFlood,
    grid: [
      { share: 0.2, accounts: 200, ageDays: 30 },
      { share: 0.05, accounts: 200, ageDays: 30 },
    ],
  },
  {
    name: 'clock-hijack',
    kind: 'text',
    build: clockHijack,
    grid: [
      { mode: 'kafka-ts', offsetDays: 3650, hijackers: 1, accounts: 150, share: 0.2 },
      { mode: 'kafka-ts', offsetDays: -3650, hijackers: 10, accounts: 150, share: 0.2 },
    ],
  },
  {
    name: 'framing',
    kind: 'text',
    build: framing,
    grid: [
      { mode: 'lock-echo', share: 0.05 },
      { mode: 'lock-toxic', share: 0.05 },
      { mode: 'new-users', share: 0.2 },
    ],
  },
  {
    name: 'sybil-flush',
    kind: 'text',
    build: sybilFlush,
    grid: [{ extraAccounts: 1000 }],
    notJudged: 'the flush needs more one-record accounts than the trust registry keeps (100,000 by default): ~97% of this stream',
  },
  {
    name: 'backdoor',
    kind: 'text',
    build: textBackdoor,
    grid: [
      { mode: 'short', length: 3, repeats: 10, share: 0.05 },
      { mode: 'collide', repeats: 10, share: 0.05 },
      { mode: 'slow', length: 8, repeats: 10, days: 3 },
      { mode: 'short', length: 2, repeats: 10, share: 0.1 },
    ],
  },
  {
    name: 'paraphrase',
    kind: 'text',
    build: textParaphrase,
    grid: [
      { mode: 'swap', every: 3, accounts: 150, share: 0.2 },
      { mode: 'confusable', accounts: 150, share: 0.05 },
    ],
  },
  {
    name: 'dos',
    kind: 'text',
    build: textDos,
    grid: [
      { share: 0.05, chars: 20000 },
      { share: 0.01, chars: 20000 },
      // The attacker who has read filters/: the words that make echo and toxicity do the most work.
      { share: 0.01, chars: 20000, mode: 'slow-path' },
      // …and who has read filters/match-count.ts: every word a match end, the verdict still "pass".
      { share: 0.01, chars: 20000, mode: 'below-threshold' },
    ],
  },
  {
    name: 'dense-backdoor',
    kind: 'dense',
    build: denseBackdoor,
    grid: [
      { trigger: 'patch', target: 0, share: 0.05 },
      { trigger: 'pattern', target: 0, share: 0.05 },
      { trigger: 'blend', target: 0, share: 0.05 },
    ],
  },
  {
    name: 'dense-flip',
    kind: 'dense',
    build: denseFlip,
    grid: [
      { mode: 'pair', from: 7, to: 1, share: 0.2 },
      { mode: 'random', share: 0.2 },
    ],
  },
];
