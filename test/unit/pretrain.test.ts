/**
 * `tayguard pretrain`: a model trained on declared-public data is a useful start for the sidecar (MODEL_PATH),
 * bad lines are counted and never trained on, and the budget says what was public.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { initTf } from '../../src/tf';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { Sidecar } from '../../src/sidecar';
import { pretrain } from '../../src/pretrain/pretrain';
import { splitSpamCorpus } from '../../src/data/spam';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

beforeAll(async () => {
  await initTf();
});

it('pretrains on public records, and the sidecar starts from that model and says so', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-pretrain-'));
  const { train, test } = splitSpamCorpus();
  const publicFile = path.join(dir, 'public.jsonl');
  const lines = train.slice(0, 1500).map((m, i) => JSON.stringify({ id: `p${i}`, source: 'public-corpus', label: m.label, text: m.text }));
  lines.splice(10, 0, '{"id": "bad", "label": 7, "text": "label out of range"}', 'not json');
  writeFileSync(publicFile, lines.join('\n'));
  const env = { KAFKA_BROKERS: '127.0.0.1:1', TEXT_HASH_DIM: '4096', CHECKPOINT_DIR: path.join(dir, 'ckpt') };
  const progress: string[] = [];
  const out = path.join(dir, 'model');
  const info = await pretrain(loadConfig(env), { publicFile, out, epochs: 3, progress: (l) => progress.push(l) });
  expect(info.publicData).toMatchObject({ file: 'public.jsonl', records: 1500, skippedLines: 2, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(progress.filter((l) => l.startsWith('epoch '))).toHaveLength(3);
  expect(progress.at(-1)).toMatch(/2 lines refused .* line 11/);

  const sidecar = new Sidecar({ config: loadConfig({ ...env, MODEL_PATH: out }), logger: createLogger('silent') });
  await sidecar.init();
  const held = test.slice(0, 400);
  const probs = sidecar.predict(held.map((m) => ({ text: m.text }))).probabilities;
  const accuracy = probs.filter((p, i) => (p[1] > p[0] ? 1 : 0) === held[i].label).length / held.length;
  expect(accuracy).toBeGreaterThan(0.85); // a useful start before one private step
  const budget = sidecar.budget();
  expect(budget.start).toEqual({ from: 'public-pretraining', publicData: { file: 'public.jsonl', sha256: info.publicData.sha256, records: 1500 } });
  expect(budget.statement).toMatch(/pretrained on data declared public \(public\.jsonl/);
  await sidecar.stop();
});

it('says what is missing when called without --public', async () => {
  const err = (await run(process.execPath, [path.join(ROOT, 'bin/tayguard.js'), 'pretrain', '--out', os.tmpdir()], { cwd: ROOT }).catch((e) => e)) as { code: number; stderr: string };
  expect(err.code).toBe(2);
  expect(err.stderr).toMatch(/ARGUMENT_INVALID: missing --public/);
});
