export type { Detector, Reason, Verdict } from './types';
export { ACCEPT } from './types';
export { parseRecord, type ParseResult, type SchemaLimits } from './schema';
export { EventClock, SourceRegistry, TrustGate, DEFAULT_TRUST, type Clock, type SourceEntry, type TrustSettings } from './trust';
export { P2Quantile } from './quantile';
export { RateCaps, DEFAULT_RATE_CAPS, type RateCapSettings } from './rate-caps';
export { EchoDetector, DEFAULT_ECHO, DEFAULT_ECHO_PATTERNS, type EchoSettings } from './echo';
export { ToxicityDetector, DEFAULT_TOXICITY, type ToxicitySettings } from './toxicity';
export { CampaignDetector, DEFAULT_CAMPAIGN, type CampaignSettings } from './campaign';
export { RareTokenDetector, DEFAULT_RARE_TOKEN, type RareTokenSettings } from './rare-token';
export { OutlierDetector, DEFAULT_OUTLIERS, textFeaturize, type Featurize, type OutlierSettings } from './outliers';
export { LabelConsistencyDetector, DEFAULT_LABEL_CONSISTENCY, type LabelConsistencySettings } from './label-consistency';
export {
  createDetectors,
  parseDetectorSettings,
  detectorSettingsSchema,
  type DetectorChain,
  type DetectorChainState,
  type DetectorDeps,
  type DetectorSettings,
  type DetectorSettingsInput,
} from './config';
