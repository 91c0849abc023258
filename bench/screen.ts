/**
 * Per-record cost and false-positive rate of the poisoning detector chain on clean SpamAssassin traffic
 * (every mail once, 300 users, one mail every 2 s; the label-consistency stage needs a model and is left out).
 * Not a test: prints numbers. Run with `npx tsx bench/screen.ts` (plain node: jest's VM makes this code
 * tens of times slower, so timings from tests are meaningless).
 */
import seedrandom from 'seedrandom';
import { createDetectors } from '../filters/config';
import { textFeaturize } from '../filters/outliers';
import { hashedTextFeaturizer } from '../middleware/featurize';
import { loadSpamCorpus, shuffled } from '../src/data/spam';

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
