/** SCREEN_STATE_BYTES: one budget for all screens' state, shared among the stateful stages (src/screens.ts). */
import { loadConfig } from '../../src/config';
import { createScreens, stateBudgets } from '../../src/screens';
import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';

const base = { KAFKA_BROKERS: 'localhost:9092' };
const MiB = 1024 * 1024;

beforeAll(async () => {
  await initTf();
});

describe('SCREEN_STATE_BYTES', () => {
  it('is shared among the enabled stateful stages in proportion to their defaults, and a stage\'s own maxStateBytes wins', () => {
    const all = stateBudgets(104 * MiB, ['rate-caps', 'campaign', 'rare-token']);
    expect(all).toEqual({ trust: 32 * MiB, rateCaps: 24 * MiB, campaign: 32 * MiB, rareToken: 16 * MiB });
    // The default screens (echo, toxicity) keep no state of their own: trust takes it all.
    expect(stateBudgets(8 * MiB, ['echo', 'toxicity']).trust).toBe(8 * MiB);

    const config = loadConfig({ ...base, SCREENS: 'rate-caps,campaign', SCREEN_STATE_BYTES: String(88 * MiB), SCREENS_CONFIG: JSON.stringify({ campaign: { maxStateBytes: 5 * MiB } }) });
    expect(config.screens.stateBytes).toBe(88 * MiB);
    const serving = new TfjsLearner(buildModel({ inputDim: 64, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 64), { learningRate: 1 });
    const chain = createScreens(config, { serving, trainedRecords: () => 0 });
    expect(chain.stateBudgets()).toEqual({ trust: 32 * MiB, 'rate-caps': 24 * MiB, campaign: 5 * MiB });
    // Unset: each stage's default.
    expect(createScreens(loadConfig({ ...base, SCREENS: 'campaign' }), { serving, trainedRecords: () => 0 }).stateBudgets()).toEqual({ trust: 32 * MiB, campaign: 32 * MiB });
  });

  it('refuses a budget too small to hold anything, with the variable named', () => {
    expect(() => loadConfig({ ...base, SCREEN_STATE_BYTES: '1000' })).toThrow(/SCREEN_STATE_BYTES/);
    expect(() => loadConfig({ ...base, SCREEN_STATE_BYTES: 'lots' })).toThrow(/SCREEN_STATE_BYTES/);
  });
});
