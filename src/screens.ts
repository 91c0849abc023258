/**
 * Builds the poisoning screen chain (filters/) from config: SCREENS picks the detectors, SCREENS_CONFIG tunes
 * them (one JSON object, validated by filters/config.ts). The detectors' own order is fixed
 * (trust → rate caps → echo → toxicity → campaign → rare token → near-duplicate → rare feature → outliers → label
 * consistency → gradient).
 */
import type { Config, ScreenName } from './config';
import { createDetectors, textFeaturize, type DetectorChain, type DetectorSettingsInput } from '../filters';
import type { Learner } from '../middleware/learner';
import { fastPredictor } from '../middleware/fast-predict';
import { recordGradient } from '../train/record-gradient';

const KEY: Record<ScreenName, string> = {
  'rate-caps': 'rateCaps',
  echo: 'echo',
  toxicity: 'toxicity',
  campaign: 'campaign',
  'rare-token': 'rareToken',
  'near-duplicate': 'nearDuplicate',
  'rare-feature': 'rareFeature',
  outliers: 'outliers',
  'label-consistency': 'labelConsistency',
  gradient: 'gradient',
};

export function createScreens(config: Config, deps: { serving: Learner & { readonly weightsVersion: number }; trainedRecords: () => number }): DetectorChain {
  const { enabled, settings } = config.screens;
  const input: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(settings)) input[k] = { ...(v as Record<string, unknown>) };
  for (const name of Object.keys(KEY) as ScreenName[]) input[KEY[name]] = { ...(input[KEY[name]] ?? {}), enabled: enabled.includes(name) };
  const featurizer = deps.serving.featurizer;
  return createDetectors(input as DetectorSettingsInput, {
    now: Date.now,
    ...(enabled.includes('outliers') ? { featurize: textFeaturize(featurizer), featureDim: featurizer.dim } : {}),
    // The label check asks the published model (not the one in training): what it reveals is already released.
    ...(enabled.includes('label-consistency')
      ? { predict: fastPredictor(deps.serving), modelSeen: deps.trainedRecords }
      : {}),
    // Feature-space screens see records as the model does; the gradient screen asks the same published model.
    ...(enabled.includes('near-duplicate') || enabled.includes('rare-feature') ? { featurizer, numClasses: deps.serving.numClasses } : {}),
    ...(enabled.includes('gradient') ? { gradient: recordGradient(deps.serving), modelSeen: deps.trainedRecords } : {}),
  });
}
