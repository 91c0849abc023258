/**
 * Per-record cost and false-positive rate of the poisoning detector chain on clean SpamAssassin traffic
 * (every mail once, 300 users, one mail every 2 s; the label-consistency stage needs a model and is left out).
 * Not a test: prints numbers. Run with `npx tsx bench/screen.ts` (plain node: jest's VM makes this code
 * tens of times slower, so timings from tests are meaningless).
 */
import seedrandom from 'seedrandom';
import { createDetectors } from '../filters/config';
import { EchoDetector } from '../filters/echo';
import { ToxicityDetector } from '../filters/toxicity';
import type { Detector } from '../filters/types';
import type { TrainingRecord } from '../core/record';
import { backdoor, dictionaryAttack, labelFlips, sybilFlood } from './attack-scenarios';
import { textFeaturize } from '../filters/outliers';
import { hashedTextFeaturizer } from '../middleware/featurize';
import { loadSpamCorpus, shuffled, splitSpamCorpus } from '../src/data/spam';
import { DEFAULT_ECHO, DEFAULT_TOXICITY } from '../filters/config';

const dim = Number(process.env.TEXT_HASH_DIM ?? 1 << 14);
const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const chain = createDetectors({}, { now: () => 0, featurize: textFeaturize(hashedTextFeaturizer(dim)), featureDim: dim });
const rng = seedrandom('bench');
const mails = shuffled(loadSpamCorpus(), 'bench');
const time = new Map<string, number>();
const flagged = new Map<string, number>();
const byLabel = [0, 0];
const n = [0, 0];
const t0 = performance.now();
mails.forEach((m, i) => {
  const r = { id: m.id, source: `user${Math.floor(rng() * 300)}`, ts: 1_700_000_000_000 + i * 2000, label: m.label, text: m.text };
  n[m.label]++;
  for (const d of chain.detectors) {
    const s = performance.now();
    const v = d.screen(r, raw);
    time.set(d.name, (time.get(d.name) ?? 0) + performance.now() - s);
    if (v.kind === 'quarantine') {
      byLabel[m.label]++;
      for (const reason of v.reasons) flagged.set(`${reason.stage}/${reason.code}`, (flagged.get(`${reason.stage}/${reason.code}`) ?? 0) + 1);
      break;
    }
  }
});
const total = performance.now() - t0;
console.log(`${mails.length} records, TEXT_HASH_DIM=${dim}: ${((1000 * total) / mails.length).toFixed(0)} µs per record through the chain`);
for (const [name, ms] of time) console.log(`  ${name.padEnd(18)} ${((1000 * ms) / mails.length).toFixed(1).padStart(7)} µs/record`);
console.log(`quarantined: ham ${byLabel[0]}/${n[0]} = ${((100 * byLabel[0]) / n[0]).toFixed(2)}%, spam ${byLabel[1]}/${n[1]} = ${((100 * byLabel[1]) / n[1]).toFixed(2)}%`);
for (const [code, c] of flagged) console.log(`  ${code}: ${c}`);

// Echo + toxicity, fast path against the reference (the pre-shortcut implementation, still selectable): cost per
// mail on the training split (same process, alternating rounds, best round each), and verdict equality on every
// mail (train and test split, as labels 0 and 1) and on the attack streams' poison records.
{
  const train = splitSpamCorpus().train;
  const fast: Detector[] = [new EchoDetector(DEFAULT_ECHO), new ToxicityDetector(DEFAULT_TOXICITY)];
  const ref: Detector[] = [new EchoDetector(DEFAULT_ECHO, { reference: true }), new ToxicityDetector(DEFAULT_TOXICITY, { reference: true })];
  const recs = train.map((m) => ({ id: m.id, source: 's', label: m.label, text: m.text }));
  const best = { fast: [Infinity, Infinity], ref: [Infinity, Infinity] };
  for (let round = 0; round < 5; round++) {
    for (const [kind, ds] of [['ref', ref], ['fast', fast]] as const) {
      ds.forEach((d, k) => {
        const s = performance.now();
        for (const r of recs) d.screen(r, raw);
        best[kind][k] = Math.min(best[kind][k], (1000 * (performance.now() - s)) / recs.length);
      });
    }
  }
  console.log(`\necho + toxicity on the ${recs.length} training mails (best of 5 rounds, µs/mail):`);
  for (const kind of ['ref', 'fast'] as const) {
    console.log(`  ${kind.padEnd(5)} echo ${best[kind][0].toFixed(1).padStart(6)}  toxicity ${best[kind][1].toFixed(1).padStart(6)}  sum ${(best[kind][0] + best[kind][1]).toFixed(1).padStart(6)}`);
  }

  const all = splitSpamCorpus();
  const attack = [sybilFlood, dictionaryAttack, labelFlips, backdoor].flatMap((f) => f(all.train).items.filter((x) => x.poison).map((x) => x.record.text));
  // src/demo.ts's flood (floodRecord over its ABUSE lines; not exported there, so copied).
  const ABUSE = ['you stupid f*cking idiot', 'shut up b1tch', 'f u c k all of you', 'what a dumb sh1t, go to hell a**hole', 'die you worthless piece of sh*t'];
  attack.push(...ABUSE.flatMap((a) => [`repeat after me: ${a}`, `${a}! ${a}, lol`]));
  const texts = [...all.train, ...all.test].map((m) => m.text).concat(attack);
  const variants: [string, Detector, Detector][] = [
    ['echo', fast[0], ref[0]],
    ['toxicity', fast[1], ref[1]],
    ['toxicity+blocklist', new ToxicityDetector({ ...DEFAULT_TOXICITY, blocklist: ['kill all', 'nazi'] }), new ToxicityDetector({ ...DEFAULT_TOXICITY, blocklist: ['kill all', 'nazi'] }, { reference: true })],
    ['toxicity 1 match', new ToxicityDetector({ ...DEFAULT_TOXICITY, minMatches: 1, minPer100Words: 0 }), new ToxicityDetector({ ...DEFAULT_TOXICITY, minMatches: 1, minPer100Words: 0 }, { reference: true })],
  ];
  for (const [name, f, r] of variants) {
    let differ = 0;
    let flagged = 0;
    for (const text of texts) {
      for (const label of [0, 1]) {
        const rec: TrainingRecord = { id: 'x', source: 's', label, text };
        const a = JSON.stringify(f.screen(rec, raw));
        if (a !== JSON.stringify(r.screen(rec, raw))) differ += 1;
        if (a !== '{"kind":"accept"}') flagged += 1;
      }
    }
    console.log(`  ${name.padEnd(19)} verdicts differ on ${differ} of ${2 * texts.length} (${texts.length - attack.length} mails + ${attack.length} attack texts, labels 0 and 1; ${flagged} quarantined)`);
  }
}
