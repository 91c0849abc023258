import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';

// SCREENS can enable the screens of issue 10 item 3 for either model kind, and the privacy status lists them as
// cross-record (outside the DP guarantee): they compare records with each other.
describe.each([
  ['text', { TEXT_HASH_DIM: '1024' }],
  ['dense', { MODEL: 'dense', FEATURE_DIM: '64', NUM_CLASSES: '10' }],
])('SCREENS=near-duplicate,rare-feature,gradient on a %s model', (_kind, env) => {
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-feature-screens-'));
    const config = loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', PORT: '0', HOST: '127.0.0.1', CHECKPOINT_DIR: dir, SCREENS: 'near-duplicate,rare-feature,gradient', ...env });
    sidecar = await createSidecar(config, createLogger('silent'));
    await sidecar.listen();
    base = `http://127.0.0.1:${sidecar.port}`;
  });
  afterAll(() => sidecar.stop());

  it('lists each under `screening` in the budget: outside the DP guarantee', async () => {
    const body = (await (await fetch(`${base}/v1/privacy/budget`)).json()) as { screening: { stage: string; scope: string }[] };
    expect(body.screening.map((s) => `${s.stage}:${s.scope}`)).toEqual(['trust:cross-record', 'near-duplicate:cross-record', 'rare-feature:cross-record', 'gradient:cross-record']);
  });
});

describe('SCREENS names', () => {
  it('accepts the new screens; the default stays echo,toxicity (the lead decides)', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'x:1', SCREENS: 'near-duplicate,rare-feature,gradient' }).screens.enabled).toEqual(['near-duplicate', 'rare-feature', 'gradient']);
    expect(loadConfig({ KAFKA_BROKERS: 'x:1' }).screens.enabled).toEqual(['echo', 'toxicity']);
  });
});
