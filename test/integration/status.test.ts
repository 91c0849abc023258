/**
 * `tayguard status` against a real `tayguard serve` (local broker, DP on, update gate and audit on, the operator
 * surface behind ADMIN_TOKEN), fed through tayguard/producer plus raw malformed messages: the screen's figures are
 * the endpoints' figures, and without the token it shows the public part only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { createRecordProducer } from '../../src/producer';
import { kafkaFor, produce, startLocalBroker, type LocalBroker } from '../helpers/kafka';
import { MALFORMED, validRecord } from '../helpers/records';
import { startSidecar, total, waitFor, type SidecarProcess } from '../helpers/sidecar-process';

jest.setTimeout(180_000);

const BIN = path.resolve(__dirname, '../../bin/tayguard.js');
const TOKEN = 'status-test-admin-token-0123';

function status(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'status', ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('tayguard status on a running sidecar', () => {
  let broker: LocalBroker;
  let sidecar: SidecarProcess;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-status-'));
  const prefix = `status-${process.pid}`;
  const rng = seedrandom('status');
  const VALID = 600;
  const records = Array.from({ length: VALID }, (_, i) => JSON.parse(validRecord(i, rng, 'st').value as string));
  const malformed = MALFORMED.map((m, i) => ({ key: null, value: m.make(i) }));
  /** An endpoint as the operator sees it. */
  const api = async (p: string): Promise<any> => (await fetch(sidecar.base + p, { headers: { authorization: `Bearer ${TOKEN}` } })).json();

  beforeAll(async () => {
    broker = await startLocalBroker();
    const canaryFile = path.join(dir, 'canaries.jsonl');
    writeFileSync(canaryFile, Array.from({ length: 40 }, (_, i) => JSON.stringify(JSON.parse(validRecord(10_000 + i, rng, 'canary').value as string))).join('\n'));
    sidecar = await startSidecar(
      {
        KAFKA_BROKERS: broker.bootstrap,
        TOPIC_PREFIX: prefix,
        GROUP_ID: prefix,
        CHECKPOINT_DIR: path.join(dir, 'ckpt'),
        CHECKPOINT_EVERY_RECORDS: '200',
        CHECKPOINT_INTERVAL_MS: '300',
        CANARY_FILE: canaryFile,
        AUDIT_CANARIES: '8',
        AUDIT_EVERY_RECORDS: '5',
        MAX_TEXT_CHARS: '2000', // MALFORMED's text_too_long is 5,000 chars
        ADMIN_TOKEN: TOKEN,
        OPERATOR_AUTH: 'token',
      },
      path.join(dir, 'sidecar.log'),
    );
    const kafka = kafkaFor(broker);
    const producer = createRecordProducer(kafka, { topicPrefix: prefix, limits: { numClasses: 2, maxTextChars: 2000 } });
    await producer.connect();
    await producer.send(records);
    await producer.disconnect();
    await produce(kafka, `${prefix}.records`, malformed);
    // Wait for the schema count too: the malformed messages are produced last.
    let last: unknown;
    await waitFor(
      async () => {
        const c = (last = (await api('/v1/model')).detail.records);
        return total(c) >= VALID + malformed.length && c.quarantineStages.schema === malformed.length;
      },
      90_000,
      'every record handled',
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; last counts ${JSON.stringify(last)}`);
    });
    // The first audit round needs its canaries admitted and a checkpoint after them.
    await waitFor(async () => (await sidecar.json('/v1/privacy/audit')).latest !== null, 60_000, 'an audit round');
  });

  afterAll(async () => {
    sidecar?.child.kill('SIGKILL');
    await broker?.stop();
  });

  it('--json carries what the endpoints answer', async () => {
    const r = await status('--url', sidecar.base, '--json', '--token', TOKEN);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const [model, budget] = [await api('/v1/model'), await api('/v1/privacy/budget')];
    expect(s.ready).toMatchObject({ ok: true, body: { status: 'ready', joined: true, modelLoaded: true, stopping: false } });
    expect(s.model.detail.records).toEqual(model.detail.records);
    expect(s.model.version).toBeLessThanOrEqual(model.version);
    expect(s.budget.epsilon.limit).toBe(budget.epsilon.limit);
    expect(s.metrics.tayguard_records_total).toBeUndefined(); // labelled series keep their labels
    expect(s.metrics['tayguard_records_total{outcome="trained"}']).toBe(model.detail.records.trained);
    expect(s.unavailable).toEqual({});
  });

  it('shows one screen whose figures are the endpoints\'', async () => {
    const r = await status('--url', sidecar.base, '--token', TOKEN);
    expect(r.code).toBe(0);
    const [model, budget, audit] = [await api('/v1/model'), await api('/v1/privacy/budget'), await api('/v1/privacy/audit')];
    const c = model.detail.records;
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`tayguard at ${sidecar.base}: ready`);
    expect(r.stdout).toContain(`${(c.trained + c.quarantined + c.skipped).toLocaleString('en-US')} handled: ${c.trained.toLocaleString('en-US')} trained, ${c.quarantined} quarantined, ${c.skipped} skipped`);
    // Every malformed message shows under the schema stage (waited for above), and its reason codes are listed.
    expect(r.stdout).toMatch(new RegExp(`by detector: .*schema ${malformed.length}`));
    for (const m of MALFORMED) expect(r.stdout).toMatch(new RegExp(`by reason: .*${m.code} \\d+`));
    expect(r.stdout).toContain(`ε ${budget.epsilon.spent.toFixed(3)} of ${budget.epsilon.limit} per record`);
    expect(r.stdout).toMatch(new RegExp(`gate +\\d+ updates kept, \\d+ undone, ${model.detail.gate.alerts.length} rollback\\(s\\) on ${model.detail.gate.canaries} canaries; canary accuracy`));
    expect(r.stdout).toContain(`audit      round ${audit.latest.round}: empirical ε ≥ ${audit.latest.epsilonLowerBound.toFixed(3)} (95%) vs accountant ε ${audit.latest.epsilonAccounted.toFixed(3)}`);
    expect(r.stdout).toMatch(/^model +version \d+ \(text, 4096 inputs, 2 classes, \w+\)/m);
  });

  it('without the token shows the public part and says what the operator part needs', async () => {
    const r = await status('--url', sidecar.base);
    expect(r.code).toBe(0);
    const budget = await sidecar.json('/v1/privacy/budget');
    expect(r.stdout).toMatch(/^model +version \d+ /m);
    expect(r.stdout).toMatch(/^records +operator-only: pass --token/m);
    expect(r.stdout).toMatch(/^gate +operator-only: pass --token/m);
    expect(r.stdout).not.toContain('consumer lag');
    expect(r.stdout).toContain(`ε ${budget.epsilon.spent.toFixed(3)} of ${budget.epsilon.limit} per record`);
    const json = JSON.parse((await status('--url', sidecar.base, '--json')).stdout);
    expect(json.unavailable['/metrics']).toMatch(/^UNAUTHORIZED: needs the admin token/);
  });

  it('exits 1 with SIDECAR_UNREACHABLE when nothing listens at --url', async () => {
    const r = await status('--url', 'http://127.0.0.1:9');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tayguard: SIDECAR_UNREACHABLE: cannot reach the sidecar at http:\/\/127\.0\.0\.1:9 /);
  });
});
