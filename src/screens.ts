/**
 * Builds the poisoning screen chain (filters/) from config: SCREENS picks the detectors, SCREENS_CONFIG tunes
 * them (one JSON object, validated by filters/config.ts). The detectors' own order is fixed
 * (trust → rate caps → echo → toxicity → witness → campaign → rare token → near-duplicate → rare feature → outliers
 * → label consistency → gradient). ABUSE_LABELS goes to every screen that judges the label's direction (echo,
 * toxicity, witness).
 */
import type { Config, ScreenName } from './config';
import { createDetectors, textFeaturize, type DetectorChain, type DetectorSettingsInput } from '../filters';
import type { Learner } from '../middleware/learner';
import { fastPredictor } from '../middleware/fast-predict';
import type { WitnessModel } from '../filters/witness';
import { recordGradient } from '../train/record-gradient';

const KEY: Record<ScreenName, string> = {
  'rate-caps': 'rateCaps',
  echo: 'echo',
  toxicity: 'toxicity',
  witness: 'witness',
  campaign: 'campaign',
  'rare-token': 'rareToken',
  'near-duplicate': 'nearDuplicate',
  'rare-feature': 'rareFeature',
  outliers: 'outliers',
  'label-consistency': 'labelConsistency',
  gradient: 'gradient',
};

/**
 * SCREEN_STATE_BYTES shared among the stages whose state grows with traffic, in the proportions of their default
 * budgets (filters/config.ts: trust 32, rate caps 24, campaign 32, rare-token 16 MiB); a stage's own `maxStateBytes`
 * in SCREENS_CONFIG wins. `outliers` and `label-consistency` hold a fixed state (dim × classes), not shared.
 */
const SHARES = { trust: 32, rateCaps: 24, campaign: 32, rareToken: 16 } as const;

export function stateBudgets(total: number, enabled: readonly ScreenName[]): Record<keyof typeof SHARES, number> {
  const on = { trust: true, rateCaps: enabled.includes('rate-caps'), campaign: enabled.includes('campaign'), rareToken: enabled.includes('rare-token') };
  const sum = (Object.keys(SHARES) as (keyof typeof SHARES)[]).reduce((n, k) => n + (on[k] ? SHARES[k] : 0), 0);
  const out = {} as Record<keyof typeof SHARES, number>;
  for (const k of Object.keys(SHARES) as (keyof typeof SHARES)[]) out[k] = Math.floor((total * SHARES[k]) / sum);
  return out;
}

export function createScreens(
  config: Config,
  deps: {
    serving: Learner & { readonly weightsVersion: number };
    trainedRecords: () => number;
    witness?: (WitnessModel & { readonly learner?: Learner & { readonly weightsVersion: number } }) | null;
  },
): DetectorChain {
  const { enabled, settings } = config.screens;
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(settings)) input[k] = typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...v } : v;
  // The witness runs when it was built: a default-on witness with too little trusted data is off (src/witness.ts logs why).
  const on = (name: ScreenName) => enabled.includes(name) && (name !== 'witness' || Boolean(deps.witness));
  for (const name of Object.keys(KEY) as ScreenName[]) input[KEY[name]] = { ...((input[KEY[name]] as object | undefined) ?? {}), enabled: on(name) };
  input.abuseLabels = config.screens.abuseLabels;
  if (config.screens.stateBytes !== undefined) {
    for (const [k, bytes] of Object.entries(stateBudgets(config.screens.stateBytes, enabled))) input[k] = { maxStateBytes: bytes, ...((input[k] as object | undefined) ?? {}) };
  }
  const featurizer = deps.serving.featurizer;
  return createDetectors(input as DetectorSettingsInput, {
    now: Date.now,
    ...(enabled.includes('outliers') ? { featurize: textFeaturize(featurizer), featureDim: featurizer.dim } : {}),
    ...(on('witness') && deps.witness ? { witness: deps.witness } : {}),
    // The label check asks the published model (not the one in training): what it reveals is already released,
    // but it is the model /v1/predict serves, so an attacker can query it until a record passes (oracle-exposed;
    // the witness screen judges by a model nobody outside can query).
    ...(enabled.includes('label-consistency')
      ? { predict: fastPredictor(deps.serving), modelSeen: deps.trainedRecords }
      : {}),
    // Feature-space screens see records as the model does. The gradient screen takes its per-record gradients from
    // the witness when there is one (fixed, never served: no oracle, and a reference the stream cannot drag along),
    // otherwise from the published model (oracle-exposed, like label-consistency).
    ...(enabled.includes('near-duplicate') || enabled.includes('rare-feature') ? { featurizer, numClasses: deps.serving.numClasses } : {}),
    ...(enabled.includes('gradient') ? { gradient: recordGradient(deps.witness?.learner ?? deps.serving), modelSeen: deps.trainedRecords } : {}),
  });
}
