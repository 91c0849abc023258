export type { Detector, Reason, Verdict } from './types';
export { ACCEPT } from './types';
export { parseRecord, type ParseResult, type SchemaLimits } from './schema';
export { EventClock, SourceRegistry, TrustGate, type Clock, type SourceEntry, type TrustSettings } from './trust';
export { P2Quantile } from './quantile';
export { RateCaps, type RateCapSettings } from './rate-caps';
export { EchoDetector, DEFAULT_ECHO_PATTERNS, type EchoSettings } from './echo';
export { ToxicityDetector, type ToxicitySettings } from './toxicity';
export { CampaignDetector, type CampaignSettings } from './campaign';
export { RareTokenDetector, type RareTokenSettings } from './rare-token';
export { NearDuplicateDetector, type NearDuplicateSettings } from './near-duplicate';
export { RareFeatureDetector, type RareFeatureSettings } from './rare-feature';
export { GradientDetector, type GradientSettings, type RecordGradient } from './gradient-spectral';
export { featureView, type FeatureRow, type FeatureSource, type FeatureView } from './feature-view';
export { OutlierDetector, textFeaturize, type Featurize, type OutlierSettings } from './outliers';
export { LabelConsistencyDetector, type LabelConsistencySettings } from './label-consistency';
export { WitnessDetector, abusivePartScore, textWindows, type WitnessModel, type WitnessSettings } from './witness';
export {
  createDetectors,
  parseDetectorSettings,
  detectorSettingsSchema,
  DETECTOR_DEFAULTS,
  DEFAULT_TRUST,
  DEFAULT_RATE_CAPS,
  DEFAULT_ECHO,
  DEFAULT_TOXICITY,
  DEFAULT_CAMPAIGN,
  DEFAULT_RARE_TOKEN,
  DEFAULT_OUTLIERS,
  DEFAULT_LABEL_CONSISTENCY,
  DEFAULT_WITNESS,
  type DetectorChain,
  type DetectorChainState,
  type DetectorDeps,
  type DetectorSettings,
  type DetectorSettingsInput,
} from './config';
