/**
 * Per-record cost of each per-record screen on the records issue 10 item 5 is about: the median SpamAssassin mail,
 * a 20,000-character record of fresh random tokens (bench:redteam's `dos` family), a 20,000-character record of
 * one repeated token and 4,000 characters of the dos family's slow-path and below-threshold text, each as a ratio to the median mail's
 * whole chain (target ≤ 5× for every screen). The chains are the sidecar's own (src/screens.ts from the config
 * loader's defaults: trust, echo, toxicity; with CANARY_FILE = 200 held-out mails, which adds the witness as in
 * bench:redteam's defaults+gate; and with an operator blocklist for toxicity). Not a test:
 * prints numbers and writes bench/results/screens.md. Timing: best of 15 rounds of 20 calls per record (the
 * machine is shared; a median of one pass is dominated by GC pauses, bench/redteam/harness.ts).
 */
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { rmSync } from 'node:fs';
import seedrandom from 'seedrandom';
import { initTf } from '../core/tf';
import { loadConfig, type Config } from '../src/config';
import { createLogger } from '../src/logger';
import { createScreens } from '../src/screens';
import { buildWitness } from '../src/witness';
import { createLearner } from '../middleware/build';
import { belowThresholdText, junkText, slowPathText } from './redteam/text-content';
import { textData } from './redteam/data';
import type { RawMessage, TrainingRecord } from '../core/record';

const raw: RawMessage = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const ROUNDS = 15;
const CALLS = 20;

function best(f: () => void): number {
  for (let i = 0; i < CALLS; i++) f();
  let b = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const s = performance.now();
    for (let i = 0; i < CALLS; i++) f();
    b = Math.min(b, (performance.now() - s) / CALLS);
  }
  return 1000 * b;
}

async function chainFor(config: Config) {
  const serving = await createLearner(config);
  const witness = await buildWitness(config, createLogger('silent'));
  return createScreens(config, { serving, trainedRecords: () => 0, witness });
}

async function main(): Promise<void> {
  const started = Date.now();
  const backend = await initTf();
  const data = textData();
  const mails = data.train.filter((e) => e.text !== undefined);
  const byLength = [...mails].sort((a, b) => (a.text as string).length - (b.text as string).length);
  const median = byLength[Math.floor(byLength.length / 2)];
  const rng = seedrandom('bench-screens');
  const records: [string, TrainingRecord][] = [
    [`median mail (${(median.text as string).length} chars)`, { id: 'm', source: 's', ts: 0, label: 0, text: median.text }],
    ['20,000 chars of fresh tokens', { id: 'f', source: 's', ts: 0, label: 0, text: junkText(rng, 20_000) }],
    ['20,000 chars of one repeated token', { id: 'r', source: 's', ts: 0, label: 0, text: 'qzxvbn '.repeat(3000).slice(0, 20_000) }],
    // What the sidecar reads of bench:redteam's dos slow-path records (TEXT_READ_CHARS of them).
    ['4,000 chars of profanity, near-misses and echo\'s words', { id: 'p', source: 's', ts: 0, label: 0, text: slowPathText(rng, 4_000) }],
    // …and of its below-threshold records: whitelisted words with terms inside, profanity just under the density.
    ['4,000 chars of whitelisted words, profanity under the density', { id: 'b', source: 's', ts: 0, label: 0, text: belowThresholdText(rng, 4_000) }],
  ];
  const lines: string[] = [];
  const base = { KAFKA_BROKERS: '127.0.0.1:1', LOG_LEVEL: 'silent' };
  const configs = [
    ['defaults', base],
    ['defaults+gate (witness on)', { ...base, CANARY_FILE: data.canaryFile }],
    // An operator blocklist adds a second bound (and exact count) over the text with punctuation blanked.
    ['defaults with a toxicity blocklist of three phrases', { ...base, SCREENS_CONFIG: JSON.stringify({ toxicity: { blocklist: ['kill all', 'repeat after me', 'buy followers'] } }) }],
  ] as const;
  const chains = [];
  for (const [, env] of configs) chains.push(await chainFor(loadConfig(env)));
  // Warm every chain on every record before timing any: the first configuration timed otherwise paid for the JIT
  // and the shared tables (its median-mail toxicity read 33 µs, the next configuration's 18 µs, same code).
  for (let round = 0; round < 3; round++) for (const chain of chains) for (const [, r] of records) for (const d of chain.detectors) best(() => d.screen(r, raw));
  for (const [k, [name]] of configs.entries()) {
    const chain = chains[k];
    // A fresh source each call would grow trust's registry; one source keeps every call the same work.
    const table = records.map(([label, r]) => ({ label, us: chain.detectors.map((d) => best(() => d.screen(r, raw))) }));
    const whole = table[0].us.reduce((a, b) => a + b, 0);
    const names = chain.detectors.map((d) => d.name);
    lines.push(`### ${name}`, '', `| record | ${names.map((n) => `${n} µs (×)`).join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`);
    for (const row of table) lines.push(`| ${row.label} | ${row.us.map((u) => `${u.toFixed(1)} (${(u / whole).toFixed(2)}×)`).join(' | ')} |`);
    lines.push('', `Median mail's whole chain: ${whole.toFixed(1)} µs; worst screen on the long records: ${Math.max(...table.slice(1).flatMap((r) => r.us)).toFixed(1)} µs = ${(Math.max(...table.slice(1).flatMap((r) => r.us)) / whole).toFixed(2)}× (target ≤ 5×).`, '');
  }
  rmSync(path.dirname(data.canaryFile), { recursive: true, force: true });
  const head = [
    '# Screen cost per record',
    '',
    `\`npm run bench:screens\` — ${new Date().toISOString()}, ${os.cpus().length} cores, ${backend} backend, Node ${process.version}, ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    `Best of ${ROUNDS} rounds of ${CALLS} calls per record and screen (µs), and its ratio to the median training mail's whole chain in the same configuration. The 20,000-character records are what MAX_TEXT_CHARS admits by default, fed to the screens whole: the sidecar itself reads only a text's first TEXT_READ_CHARS (4,000) characters, so these rows bound a configuration that raises it.`,
    '',
  ];
  const out = [...head, ...lines].join('\n');
  process.stdout.write(`${out}\n`);
  writeFileSync(path.join(__dirname, 'results', 'screens.md'), `${out}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
