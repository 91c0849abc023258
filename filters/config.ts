/**
 * Settings for the poisoning detectors (one zod schema, every field defaulted) and the factory that builds the
 * chain in its fixed order:
 *
 *   trust (blocked sources) → rate-caps → echo → toxicity → witness → campaign → rare-token → near-duplicate
 *   → rare-feature → outliers → label-consistency → gradient
 *
 * Cheap per-source and per-text checks come first; the cross-record statistics last, so they learn only from
 * records that passed everything cheaper. All stages share one EventClock and one SourceRegistry; every
 * quarantine is noted against its source's trust. `outliers` and `label-consistency` need dependencies
 * (`featurize`, `predict`): left unset (`enabled` undefined) they are on exactly when the dependency is given.
 * `rareToken` (backdoor triggers) is off unless enabled (SCREENS=…,rare-token). `witness` needs a fixed witness
 * model (`deps.witness`, src/witness.ts) and, like `outliers`, is on exactly when it is given unless `enabled` says.
 *
 * `abuseLabels` (chain-wide): the classes whose label says "this content is bad" (spam, abuse). A record so
 * labelled does not teach the model to produce or accept its content, so `echo` and `toxicity` pass it — an
 * honest "this is spam" report of a campaign that carries "repeat after me" or profanity is not quarantined and
 * its reporter's trust is not lowered — and `witness` judges only the other labels' texts part by part.
 */
import { z } from 'zod';
import { TayguardError } from '../core/errors';
import type { TrainingRecord } from '../core/record';
import { CampaignDetector, type CampaignSettings, type CampaignState } from './campaign';
import { DEFAULT_ECHO_PATTERNS, EchoDetector, type EchoSettings } from './echo';
import { LabelConsistencyDetector, type LabelConsistencySettings, type LabelConsistencyState } from './label-consistency';
import { OutlierDetector, type Featurize, type OutlierSettings, type OutlierState } from './outliers';
import { RateCaps, type RateCapSettings, type RateCapState } from './rate-caps';
import { RareTokenDetector, type RareTokenSettings, type RareTokenState } from './rare-token';
import { ToxicityDetector, type ToxicitySettings } from './toxicity';
import { WitnessDetector, type WitnessModel, type WitnessSettings } from './witness';
import { featureView, type FeatureSource } from './feature-view';
import { GradientDetector, type GradientState, type RecordGradient } from './gradient-spectral';
import { NearDuplicateDetector, type NearDuplicateState } from './near-duplicate';
import { RareFeatureDetector, type RareFeatureState } from './rare-feature';
import { EventClock, SourceRegistry, STRIKE_CODES, TrustGate, corrupt, type Clock, type EventClockState, type SourceRegistryState, type TrustSettings } from './trust';
import type { Detector, Verdict } from './types';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const ms = int(1);
const fraction = (msg: string) => z.number().gt(0, msg).lte(1, msg);
const quantile = z.number().gt(0.5, 'a quantile between 0.5 and 1 (exclusive)').lt(1, 'a quantile between 0.5 and 1 (exclusive)');

const regex = z.string().refine(
  (p) => {
    try {
      new RegExp(p, 'giu');
      return true;
    } catch {
      return false;
    }
  },
  { error: (iss) => `not a valid regular expression: ${JSON.stringify(iss.input)}` },
);

export const detectorSettingsSchema = z.object({
  // Empty by default here (every label is screened); the service sets it from ABUSE_LABELS (spam = 1 for binary tasks).
  abuseLabels: z.array(int(0)).default([]),
  trust: z
    .object({
      maxSources: int(1).default(100_000),
      maxBlocked: int(0).default(10_000),
      newSourceAgeMs: int(0).default(24 * 3600_000),
      newSourceMinRecords: int(0).default(5),
      matureAgeMs: ms.default(7 * 24 * 3600_000),
      matureRecords: int(1).default(50),
      // Strikes and gate penalties halve every 3 days of event time: long enough that a source caught flooding stays
      // suspect through the attack, short enough that an honest source penalised for sharing a batch recovers.
      penaltyHalfLifeMs: ms.default(3 * 24 * 3600_000),
      // A verified account (sourceMeta.verified) counts as 10 clean records: not new, but not yet trusted either
      // (trust 0.2 of label-consistency's 0.5 bar) until it has history here.
      verifiedRecords: int(0).default(10),
      // ~260 bytes a source: 100,000 sources of 16-character ids fit in 26 MB.
      maxStateBytes: int(1024).default(32 * 1024 * 1024),
    })
    .strict()
    .prefault({}),
  rateCaps: z
    .object({
      enabled: z.boolean().default(true),
      windowMs: ms.default(3600_000),
      buckets: int(1, 1000).default(12),
      maxPerSource: int(1).default(200),
      maxPerNewSource: int(1).default(20),
      maxShare: fraction('maxShare is a fraction in (0, 1]').default(0.2),
      shareMinTotal: int(1).default(500),
      maxSources: int(1).default(100_000),
      maxStateBytes: int(1024).default(24 * 1024 * 1024),
    })
    .strict()
    .refine((r) => r.maxPerNewSource <= r.maxPerSource, {
      message: 'maxPerNewSource must not exceed maxPerSource (new sources get the stricter budget)',
      path: ['maxPerNewSource'],
    })
    .prefault({}),
  echo: z
    .object({
      enabled: z.boolean().default(true),
      patterns: z.array(regex).default([...DEFAULT_ECHO_PATTERNS]),
      minMatches: int(1).default(1),
    })
    .strict()
    .prefault({}),
  toxicity: z
    .object({
      enabled: z.boolean().default(true),
      minMatches: int(1).default(2),
      minPer100Words: z.number().min(0).default(2),
      blocklist: z.array(z.string().trim().min(1, 'blocklist entries must not be empty')).default([]),
      labels: z.array(int(0)).min(1, 'labels, when set, must list at least one label').optional(),
      // The whole text up to MAX_TEXT_CHARS' default (the schema refuses longer ones): abuse placed after the first
      // 2,000 characters used to pass. The cost stays linear in the capped length.
      maxChars: int(1).default(20_000),
    })
    .strict()
    .prefault({}),
  witness: z
    .object({
      enabled: z.boolean().optional(),
      // The whole-record rule holds back a label the witness gives less than this — or less than the calibrated
      // bar, when that is lower (src/witness.ts). 0.02, not 0.05: with 300 trusted mails 0.05 held back 1.6% of
      // clean held-out spam, 0.02 0.5% (1,000 mails: 0.8% → 0.3%), for 87% instead of 93% of flipped ham caught.
      maxLabelProbability: z.number().gt(0).lte(0.5, 'maxLabelProbability is a probability in (0, 0.5]').default(0.02),
      parts: z.boolean().default(true),
      // 40: on SpamAssassin (1,000 trusted mails, 0.5% calibration) windows of 30 / 40 / 60 tokens held back
      // 0.2% / 1.0% / 1.7% of clean ham and 54% / 76% / 82% of spam padded against the public model.
      partTokens: int(4, 10_000).default(40),
      maxChars: int(1).default(20_000),
      // Calibration when the witness is built (src/witness.ts, src/witness-fit.ts), on the out-of-fold scores of
      // every trusted record (`folds`-fold cross-fitting; folds: 1 = the former 25% `heldOut` share): each rule's bar
      // is set so that at most falseQuarantine of them would be held back; the parts bar is never below
      // minPartThreshold (300 trusted mails once calibrated it below 0.9 and held back 2.8% of clean ham).
      // 0.01, not 0.005: with 200 trusted mails the 0.5% quantile of 200 out-of-fold scores is their second lowest,
      // far in the tail (bar 4e-4: 31% of spam labelled ham caught, 0.12% of honest mail held back); at 0.01 the bar
      // reaches maxLabelProbability (69% caught, 0.75% honest); MNIST, 200 trusted digits: 7→1 flips 77% → 81%,
      // clean digits 1.09% → 1.25%; 1,000 digits 82% → 88%, 0.53% → 0.98% (npm run bench:witness, tune split,
      // bench/results/witness.md). The red-team budget for honest quarantine is 2% for the whole chain.
      falseQuarantine: fraction('falseQuarantine is a fraction in (0, 1]').default(0.01),
      minPartThreshold: z.number().gt(0.5, 'minPartThreshold is a probability in (0.5, 1)').lt(1).default(0.97),
      // Plain SGD on the trusted records; unset: the model kind's non-private default (src/config.ts).
      learningRate: z.number().positive().max(100).optional(),
      // 5 folds: 6 trainings at start-up (bench:witness: 200 trusted mails ~15 s, 1,000 ~20 s on 2 shared cores);
      // 10 folds moved the 200-mail bar further (and cost twice as much) without a better ranking.
      folds: int(1, 20).default(5),
      // A bar per label (each label's own out-of-fold records) instead of one over all: measured worse — with ~100
      // records a label, its 1% quantile is its lowest record (MNIST, 1,000 digits: 77% vs 82% of 7→1 caught; 200
      // mails: honest spam held back 0.9% vs 0%), so off by default.
      perLabel: z.boolean().default(false),
      // At least 800 SGD steps (batch BATCH_SIZE): what 6 epochs over 1,000 mails and their windows already take;
      // 200 mails then get ~22 epochs instead of 6 (ranking at 1% honest: 59% → 71% of spam labelled ham caught).
      minSteps: int(0, 100_000).default(800),
      // Windows of each trusted text trained on (the parts rule's unit): 16, not 8 — 200 mails: 71% → 74–78% caught at
      // 1% honest; 1,000: 80% → 90%.
      trainingWindows: int(0, 64).default(16),
      heldOut: z.number().gt(0, 'heldOut is a fraction in (0, 0.5]').lte(0.5, 'heldOut is a fraction in (0, 0.5]').default(0.25),
    })
    .strict()
    .prefault({}),
  campaign: z
    .object({
      enabled: z.boolean().default(true),
      windowMs: ms.default(3600_000),
      shingle: int(1, 10).default(2),
      bands: int(1, 128).default(24),
      rows: int(1, 32).default(3),
      minSimilarity: fraction('minSimilarity is a fraction in (0, 1]').default(0.6),
      minSources: int(2).default(5),
      minTokens: int(1).default(6),
      labels: z.array(int(0)).min(1, 'labels, when set, must list at least one label').optional(),
      // 200 (not 400) and burst share 0.75 (not 0.9): measured by npm run bench:attacks, where real new users keep
      // arriving during a flood and dilute the sybils' share below 90%.
      maxTokens: int(1).default(200),
      maxEntries: int(1).default(50_000),
      maxBucket: int(1).default(64),
      maxCandidates: int(1).default(256),
      // ~460 bytes an entry (a 72-value signature in base64 and the source): 50,000 entries and their votes fit.
      maxStateBytes: int(1024).default(32 * 1024 * 1024),
      burst: z
        .object({
          enabled: z.boolean().default(true),
          minNewSources: int(2).default(30),
          minShare: fraction('burst.minShare is a fraction in (0, 1]').default(0.75),
          minZ: z.number().positive().default(4),
          baselineHalfLife: int(1).default(5000),
          minBaseline: int(0).default(200),
        })
        .strict()
        .prefault({}),
    })
    .strict()
    .refine((c) => c.bands * c.rows <= 512, { message: 'bands × rows (the MinHash signature length) must be at most 512', path: ['rows'] })
    .prefault({}),
  rareToken: z
    .object({
      enabled: z.boolean().default(false),
      windowMs: ms.default(3600_000),
      // Measured on the clean streams of npm run bench:attacks: 10 sources within an hour of a token's first use,
      // never seen before, flag ≤ 0.02% of clean records; 8 sources, 1 earlier use allowed, or a 24 h youth flag
      // 0.1–1% (new topic words: "occurs", "vendors", "formatting").
      youthMs: ms.default(3600_000),
      minSources: int(2).default(10),
      minShare: z.number().gt(0.5, 'minShare is a fraction in (0.5, 1]').lte(1, 'minShare is a fraction in (0.5, 1]').default(0.9),
      maxPriorUses: int(0, 254).default(0),
      warmupRecords: int(0).default(1000),
      minTokenLength: int(1, 1000).default(4),
      maxChars: int(1).default(20_000),
      maxTokensPerRecord: int(1).default(2000),
      width: int(64, 1 << 24)
        .refine((w) => (w & (w - 1)) === 0, { error: (iss) => `width must be a power of two (got ${String(iss.input)})` })
        .default(1 << 16),
      depth: int(1, 8).default(4),
      agingRecords: int(1).default(200_000),
      maxTracked: int(1).default(50_000),
      maxUsesPerToken: int(2).default(256),
      maxStateBytes: int(1024).default(16 * 1024 * 1024),
    })
    .strict()
    .refine((r) => r.youthMs >= r.windowMs, { message: 'youthMs must be at least windowMs (a token stays young for at least one window)', path: ['youthMs'] })
    .refine((r) => r.maxUsesPerToken >= r.minSources, {
      message: 'maxUsesPerToken must be at least minSources (otherwise the source count can never reach it)',
      path: ['maxUsesPerToken'],
    })
    .prefault({}),
  // Issue 10, item 3 (detection where poison acts): feature-space near-duplicates, rare features over several
  // time scales, and the per-record gradient screen. Off unless enabled (SCREENS=…); measured in README.
  nearDuplicate: z
    .object({
      enabled: z.boolean().default(false),
      bits: int(32, 1024)
        .refine((b) => b % 32 === 0, { error: (iss) => `bits must be a multiple of 32 (got ${String(iss.input)})` })
        .default(128),
      minCosine: z.number().gt(0, 'minCosine is a cosine in (0, 1)').lt(1, 'minCosine is a cosine in (0, 1)').optional(),
      windowMs: ms.default(3600_000),
      minSources: int(2).default(15),
      minFeatures: int(1).default(6),
      maxFeatures: int(1).default(512),
      warmupRecords: int(0).default(200),
      centreHorizon: int(1).default(2000),
      maxSingles: int(1).default(512),
      maxGroups: int(1).default(256),
      maxMembers: int(2).default(32),
      labels: z.array(int(0)).min(1, 'labels, when set, must list at least one label').optional(),
    })
    .strict()
    .refine((d) => d.maxMembers >= d.minSources, { message: 'maxMembers must be at least minSources (a cluster must be able to hold that many sources)', path: ['maxMembers'] })
    .prefault({}),
  rareFeature: z
    .object({
      enabled: z.boolean().default(false),
      scalesMs: z
        .array(ms)
        .min(2, 'scalesMs lists at least two time scales')
        .max(4, 'scalesMs lists at most four time scales')
        .refine((a) => a.every((v, i) => i === 0 || v > a[i - 1]), { message: 'scalesMs must be increasing' })
        .default([3600_000, 24 * 3600_000, 7 * 24 * 3600_000]),
      minCount: z.number().positive().default(8),
      minRatio: z.number().gt(1, 'minRatio must be above 1').default(4),
      minSurprise: z.number().positive().default(10),
      minShare: z.number().gt(0.5, 'minShare is a fraction in (0.5, 1]').lte(1, 'minShare is a fraction in (0.5, 1]').default(0.8),
      minBaseline: z.number().positive().default(500),
      prior: z.number().positive().default(1),
      // Every bucket of all but the longest texts (a trigger placed after 512 distinct words must still count).
      maxKeysPerRecord: int(1).default(2048),
      sourceSlots: int(1, 8).default(2),
      /** Labels screened are 0 … maxLabels − 1; defaults to the model's class count. */
      maxLabels: int(1, 1000).optional(),
      denseZ: z.number().positive().default(4),
      denseFloor: z.number().min(0).default(0.1),
      denseWarmup: int(0).default(500),
      denseHorizon: int(1).default(5000),
      labels: z.array(int(0)).min(1, 'labels, when set, must list at least one label').optional(),
    })
    .strict()
    .prefault({}),
  gradient: z
    .object({
      enabled: z.boolean().default(false),
      sketchDim: int(64, 1 << 16)
        .refine((w) => (w & (w - 1)) === 0, { error: (iss) => `sketchDim must be a power of two (got ${String(iss.input)})` })
        .default(1024),
      clipNorm: z.number().positive().default(1),
      horizon: int(1).default(1000),
      minTrust: z.number().min(0).max(1).default(0.5),
      minReference: int(1).default(200),
      minStream: int(1).default(50),
      minShift: z.number().positive().default(40),
      quantile: quantile.default(0.98),
      scoreWindow: int(10, 100_000).default(500),
      slack: z.number().min(1, 'slack multiplies the quantile and must be ≥ 1').default(1),
      shrink: z.number().min(0).default(0.1),
      minModelRecords: int(0).default(1000),
      labels: z.array(int(0)).min(1, 'labels, when set, must list at least one label').optional(),
    })
    .strict()
    .prefault({}),
  outliers: z
    .object({
      enabled: z.boolean().optional(),
      /** Feature dimension; defaults to deps.featureDim. */
      dim: int(1).optional(),
      quantile: quantile.default(0.995),
      slack: z.number().min(1, 'slack multiplies the quantile and must be ≥ 1').default(1.1),
      minPerClass: int(1).default(500),
      horizon: int(1).default(5000),
      sphere: z.boolean().default(true),
      slab: z.boolean().default(true),
      refreshEvery: int(1).default(32),
    })
    .strict()
    .prefault({}),
  labelConsistency: z
    .object({
      enabled: z.boolean().optional(),
      // A streaming spam model is rarely 90% sure: at 0.9 this screen caught almost nothing in bench:attacks.
      quantile: quantile.default(0.98),
      minConfidence: z.number().min(0.5, 'minConfidence is a probability in [0.5, 1]').max(1).default(0.7),
      minLoss: z.number().min(0).default(1.2),
      maxTrust: z.number().min(0).max(1).default(0.5),
      // Trusted sources may correct the model where it is unsure, not flip what it is sure of (p(label) < 10%):
      // in bench:attacks this halved the label flips admitted from established sources (scenario C) with no
      // change in clean false quarantine. A very large value lets trusted sources through always.
      trustedMinLoss: z.number().min(0).default(Math.log(10)),
      minModelRecords: int(0).default(2000),
      minPerClass: int(1).default(100),
    })
    .strict()
    .prefault({}),
});

export type DetectorSettings = z.infer<typeof detectorSettingsSchema>;
export type DetectorSettingsInput = z.input<typeof detectorSettingsSchema>;

/** Defaults merged with `input`; throws CONFIG_INVALID with one line per problem. */
export function parseDetectorSettings(input: unknown = {}): DetectorSettings {
  const r = detectorSettingsSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `detectors.${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  throw new TayguardError('CONFIG_INVALID', `invalid detector settings:\n  ${lines.join('\n  ')}`);
}

/**
 * The defaults production runs, derived from the schema above: the one place they are defined. Detector tests
 * build from these (a test that needs other values passes them explicitly).
 */
export const DETECTOR_DEFAULTS: DetectorSettings = parseDetectorSettings({});
/** A stage's settings without the chain's `enabled` switch. */
const settingsOf = <T extends { enabled?: boolean }>({ enabled: _enabled, ...settings }: T): Omit<T, 'enabled'> => settings;
export const DEFAULT_TRUST: TrustSettings = DETECTOR_DEFAULTS.trust;
export const DEFAULT_RATE_CAPS: RateCapSettings = settingsOf(DETECTOR_DEFAULTS.rateCaps);
export const DEFAULT_ECHO: EchoSettings = settingsOf(DETECTOR_DEFAULTS.echo);
export const DEFAULT_TOXICITY: ToxicitySettings = settingsOf(DETECTOR_DEFAULTS.toxicity);
export const DEFAULT_CAMPAIGN: CampaignSettings = settingsOf(DETECTOR_DEFAULTS.campaign);
export const DEFAULT_RARE_TOKEN: RareTokenSettings = settingsOf(DETECTOR_DEFAULTS.rareToken);
/** `dim` has no schema default (the chain takes the model's feature width): here 2^14, the text model's default width. */
export const DEFAULT_OUTLIERS: OutlierSettings = { ...settingsOf(DETECTOR_DEFAULTS.outliers), dim: 1 << 14 };
export const DEFAULT_LABEL_CONSISTENCY: LabelConsistencySettings = settingsOf(DETECTOR_DEFAULTS.labelConsistency);
export const DEFAULT_WITNESS: WitnessSettings = settingsOf(DETECTOR_DEFAULTS.witness);

export interface DetectorDeps {
  /** Time for records without `ts` (inject a fixed/replayed clock for replays and tests). */
  readonly now: Clock;
  /** Feature vector for the sphere/slab defence (text: `textFeaturize(hashedTextFeaturizer(dim))`). */
  readonly featurize?: Featurize;
  readonly featureDim?: number;
  /** Current model's class probabilities, and how many records it has trained on. */
  readonly predict?: (record: TrainingRecord) => ArrayLike<number>;
  readonly modelSeen?: () => number;
  /** A fixed witness model trained on trusted data only (src/witness.ts); never the served model. */
  readonly witness?: WitnessModel;
  /** The model's featurizer, for the feature-space screens (near-duplicate, rare-feature). */
  readonly featurizer?: FeatureSource;
  /** Classes of the model (sizes rare-feature's counters). */
  readonly numClasses?: number;
  /** The current model's per-record last-layer gradient (train/record-gradient.ts), for the gradient screen. */
  readonly gradient?: (record: TrainingRecord) => RecordGradient | undefined;
}

export interface DetectorChainState {
  readonly version: 1;
  readonly clock: EventClockState;
  readonly trust: SourceRegistryState;
  readonly rateCaps?: RateCapState;
  readonly campaign?: CampaignState;
  readonly rareToken?: RareTokenState;
  readonly nearDuplicate?: NearDuplicateState;
  readonly rareFeature?: RareFeatureState;
  readonly outliers?: OutlierState;
  readonly labelConsistency?: LabelConsistencyState;
  readonly gradient?: GradientState;
}

export interface DetectorChain {
  /** Pass to the pipeline (`PipelineOptions.detectors`), in this order. */
  readonly detectors: readonly Detector[];
  readonly settings: DetectorSettings;
  readonly registry: SourceRegistry;
  readonly clock: EventClock;
  readonly rateCaps?: RateCaps;
  readonly campaign?: CampaignDetector;
  readonly rareToken?: RareTokenDetector;
  readonly nearDuplicate?: NearDuplicateDetector;
  readonly rareFeature?: RareFeatureDetector;
  readonly outliers?: OutlierDetector;
  readonly labelConsistency?: LabelConsistencyDetector;
  readonly witness?: WitnessDetector;
  readonly gradient?: GradientDetector;
  toJSON(): DetectorChainState;
  restore(state: DetectorChainState): void;
  /**
   * Upper bound on each stateful stage's checkpoint bytes (`toJSON()` of that stage): what /metrics shows as
   * tayguard_screen_state_bytes and what `maxStateBytes` bounds on every insert.
   */
  stateBytes(): Record<string, number>;
  /** Each stage's `maxStateBytes` (stages whose state is fixed by the configuration have none). */
  stateBudgets(): Record<string, number>;
}

/**
 * Same name and scope; every quarantine is noted for the source (a quarantined record is not clean history), and
 * counts as a strike against its trust only when the reason is the source's own volume (STRIKE_CODES): trust never
 * falls because of what other accounts sent (filters/source-registry.ts).
 */
function tracked(d: Detector, registry: SourceRegistry, clock: EventClock): Detector {
  return {
    name: d.name,
    scope: d.scope,
    screen(record, raw): Verdict {
      const v = d.screen(record, raw);
      if (v.kind === 'quarantine') registry.noteQuarantine(record.source, v.reasons.some((r) => STRIKE_CODES.has(r.code)), clock.timeOf(record));
      return v;
    },
  };
}

export function createDetectors(input: DetectorSettingsInput | DetectorSettings, deps: DetectorDeps): DetectorChain {
  const s = parseDetectorSettings(input);
  const clock = new EventClock(deps.now);
  const registry = new SourceRegistry(s.trust);
  const shared = { clock, registry };
  const list: Detector[] = [new TrustGate(shared)];

  const rateCaps = s.rateCaps.enabled ? new RateCaps(s.rateCaps, shared) : undefined;
  if (rateCaps) list.push(rateCaps);
  const abuseLabels = s.abuseLabels;
  if (s.echo.enabled) list.push(new EchoDetector({ ...s.echo, abuseLabels }));
  if (s.toxicity.enabled) list.push(new ToxicityDetector({ ...s.toxicity, abuseLabels }));
  let witness: WitnessDetector | undefined;
  if (s.witness.enabled ?? deps.witness !== undefined) {
    if (!deps.witness) throw new TayguardError('CONFIG_INVALID', 'detectors.witness.enabled is true but no witness was given: the witness is built from trusted data (WITNESS_DATA, CANARY_FILE or WITNESS_MODEL_PATH)');
    witness = new WitnessDetector({ ...s.witness, abuseLabels }, deps.witness);
    list.push(witness);
  }
  const campaign = s.campaign.enabled ? new CampaignDetector(s.campaign, shared) : undefined;
  if (campaign) list.push(campaign);
  const rareToken = s.rareToken.enabled ? new RareTokenDetector(s.rareToken, shared) : undefined;
  if (rareToken) list.push(rareToken);
  const { nearDuplicate, rareFeature } = featureScreens(s, deps, shared);
  if (nearDuplicate) list.push(nearDuplicate);
  if (rareFeature) list.push(rareFeature);

  let outliers: OutlierDetector | undefined;
  if (s.outliers.enabled ?? deps.featurize !== undefined) {
    const dim = s.outliers.dim ?? deps.featureDim;
    if (!deps.featurize || dim === undefined) {
      throw new TayguardError('CONFIG_INVALID', 'detectors.outliers.enabled is true but no featurize dependency (and featureDim or outliers.dim) was given');
    }
    outliers = new OutlierDetector({ ...s.outliers, dim }, { featurize: deps.featurize });
    list.push(outliers);
  }

  let labelConsistency: LabelConsistencyDetector | undefined;
  if (s.labelConsistency.enabled ?? deps.predict !== undefined) {
    if (!deps.predict || !deps.modelSeen) {
      throw new TayguardError('CONFIG_INVALID', 'detectors.labelConsistency.enabled is true but no predict/modelSeen dependency was given');
    }
    labelConsistency = new LabelConsistencyDetector(s.labelConsistency, { predict: deps.predict, modelSeen: deps.modelSeen, ...shared });
    list.push(labelConsistency);
  }

  let gradient: GradientDetector | undefined;
  if (s.gradient.enabled) {
    if (!deps.gradient) throw new TayguardError('CONFIG_INVALID', 'detectors.gradient.enabled is true but no gradient dependency (the model\'s per-record gradient) was given');
    gradient = new GradientDetector(settingsOf(s.gradient), { gradient: deps.gradient, modelSeen: deps.modelSeen, ...shared });
    list.push(gradient);
  }

  return {
    detectors: list.map((d) => tracked(d, registry, clock)),
    settings: s,
    registry,
    clock,
    rateCaps,
    campaign,
    rareToken,
    nearDuplicate,
    rareFeature,
    outliers,
    labelConsistency,
    witness,
    gradient,
    toJSON: () => ({
      version: 1,
      clock: clock.toJSON(),
      trust: registry.toJSON(),
      ...(rateCaps ? { rateCaps: rateCaps.toJSON() } : {}),
      ...(campaign ? { campaign: campaign.toJSON() } : {}),
      ...(rareToken ? { rareToken: rareToken.toJSON() } : {}),
      ...(nearDuplicate ? { nearDuplicate: nearDuplicate.toJSON() } : {}),
      ...(rareFeature ? { rareFeature: rareFeature.toJSON() } : {}),
      ...(outliers ? { outliers: outliers.toJSON() } : {}),
      ...(labelConsistency ? { labelConsistency: labelConsistency.toJSON() } : {}),
      ...(gradient ? { gradient: gradient.toJSON() } : {}),
    }),
    stateBytes: () => ({
      trust: registry.stateBytes + 48, // and the event clock
      ...(rateCaps ? { 'rate-caps': rateCaps.stateBytes } : {}),
      ...(campaign ? { campaign: campaign.stateBytes } : {}),
      ...(rareToken ? { 'rare-token': rareToken.stateBytes } : {}),
      ...(outliers ? { outliers: outliers.stateBytes } : {}),
      ...(labelConsistency ? { 'label-consistency': labelConsistency.stateBytes } : {}),
    }),
    stateBudgets: () => ({
      trust: s.trust.maxStateBytes,
      ...(rateCaps ? { 'rate-caps': s.rateCaps.maxStateBytes } : {}),
      ...(campaign ? { campaign: s.campaign.maxStateBytes } : {}),
      ...(rareToken ? { 'rare-token': s.rareToken.maxStateBytes } : {}),
    }),
    restore(state) {
      if (!state || state.version !== 1) throw corrupt('chain', `unknown state version ${JSON.stringify(state?.version)}`);
      clock.restore(state.clock);
      registry.restore(state.trust);
      // A stage enabled after the checkpoint starts empty; a stage's state without the stage is dropped.
      if (rateCaps && state.rateCaps) rateCaps.restore(state.rateCaps);
      if (campaign && state.campaign) campaign.restore(state.campaign);
      if (rareToken && state.rareToken) rareToken.restore(state.rareToken);
      if (nearDuplicate && state.nearDuplicate) nearDuplicate.restore(state.nearDuplicate);
      if (rareFeature && state.rareFeature) rareFeature.restore(state.rareFeature);
      if (outliers && state.outliers) outliers.restore(state.outliers);
      if (labelConsistency && state.labelConsistency) labelConsistency.restore(state.labelConsistency);
      if (gradient && state.gradient) gradient.restore(state.gradient);
    },
  };
}

/** The two feature-space screens, sharing one featurization per record (feature-view.ts). */
function featureScreens(
  s: DetectorSettings,
  deps: DetectorDeps,
  shared: { clock: EventClock; registry: SourceRegistry },
): { nearDuplicate?: NearDuplicateDetector; rareFeature?: RareFeatureDetector } {
  if (!s.nearDuplicate.enabled && !s.rareFeature.enabled) return {};
  const f = deps.featurizer;
  if (!f) throw new TayguardError('CONFIG_INVALID', 'detectors.nearDuplicate/rareFeature need the model\'s featurizer (the featurizer dependency) to see records as the model does');
  const features = featureView(f, Math.max(s.nearDuplicate.maxFeatures, s.rareFeature.maxKeysPerRecord));
  const view = { ...shared, features, kind: f.kind, dim: f.dim };
  const { enabled: _n, ...nd } = s.nearDuplicate;
  const { enabled: _r, maxLabels, ...rf } = s.rareFeature;
  return {
    nearDuplicate: s.nearDuplicate.enabled ? new NearDuplicateDetector(nd, view) : undefined,
    rareFeature: s.rareFeature.enabled ? new RareFeatureDetector({ ...rf, maxLabels: maxLabels ?? deps.numClasses ?? 2 }, view) : undefined,
  };
}
