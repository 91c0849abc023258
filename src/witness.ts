/**
 * Builds the witness the `witness` screen judges labels with (filters/witness.ts): a model trained once, at
 * start-up, on data the deployment vouches for — WITNESS_DATA (public or consented records, the `tayguard pretrain
 * --public` format), the update gate's CANARY_FILE (unless WITNESS_CANARIES=false), optionally starting from a
 * WITNESS_MODEL_PATH written by `tayguard pretrain` — and never again: it is not trained on the stream, not
 * published, not served by /v1/predict, not in the checkpoint (the same files and seed rebuild the same witness at
 * every start). Its training is plain SGD: the data is not the stream, so it costs no privacy (as for
 * `tayguard pretrain`).
 *
 * Its bars are calibrated by cross-fitting (src/witness-fit.ts): each trusted record is scored by a model trained
 * on the other `folds` − 1 folds, both rules' bars are set so that each would hold back at most `falseQuarantine`
 * of these out-of-fold scores, and the witness itself trains on every trusted record. The whole-record bar is
 * capped at maxLabelProbability (a weak witness is confidently wrong more often: on MNIST pixels a fixed 5% bar
 * held back 3.1% of clean digits); the parts bar is the (1 − falseQuarantine) quantile of the "acceptable"
 * records' part scores, never below minPartThreshold. With fewer than MIN_CALIBRATION such records the parts rule
 * stays off and the whole-record bar is the cap (logged). For text, training also sees each trusted record's
 * windows (the unit the parts rule judges), labelled like the record: a witness that has seen short texts is
 * sharper on them (in a prototype on SpamAssassin, at the same 1% clean false quarantine, it caught 80% instead of
 * 62% of padded spam). A small set gets more passes (at least `minSteps` SGD steps).
 *
 * Measured (npm run bench:witness, bench/results/witness.md), red-team deployment with 200 trusted mails, spam
 * labelled ham from the held-out test part: formerly (150 trained, 50 held out, 6 epochs, 8 windows) 42% caught at
 * 0.73% of honest mail held back; now (200 trained, bars from 200 out-of-fold scores, ≥ 800 SGD steps, 16 windows)
 * 67% at 0.73%. 1,000 trusted mails: 72% at 0.50% → 81% at 0.87%. MNIST 7→1 with 200 trusted digits: 75% at 1.3%
 * of clean digits → 82% at 1.5%. Start-up: `folds` + 1 trainings (200 mails ~15 s, 1,000 ~20 s on 2 shared cores,
 * instead of ~1 and ~2 s).
 */
import * as path from 'node:path';
import type { Config } from './config';
import { defaultLearningRate } from './config';
import { WITNESS_OFF } from './config-witness';
import type { Logger } from './logger';
import { TayguardError } from '../core/errors';
import type { TrainingRecord } from '../core/record';
import { parseDetectorSettings } from '../filters/config';
import type { WitnessModel } from '../filters/witness';
import { buildModel, featurizerFor } from '../middleware/build';
import { loadLayersModelFromDir } from '../middleware/files';
import { TfjsLearner } from '../middleware/learner';
import { readLabelledRecords, readPretrainInfo } from './pretrain/pretrain';
import { fitWitness, MIN_CALIBRATION } from './witness-fit';

export { MIN_CALIBRATION };
/**
 * Trusted records below which a witness trained from scratch is too weak to judge anyone (without a
 * WITNESS_MODEL_PATH to start from): 300 SpamAssassin mails already held back 2% of clean ham.
 */
export const MIN_WITNESS_RECORDS = 100;

export interface WitnessInfo {
  /** The trusted files: name, sha256, valid records, refused lines. */
  readonly data: readonly { readonly setting: 'WITNESS_DATA' | 'CANARY_FILE'; readonly file: string; readonly sha256: string; readonly records: number; readonly skippedLines: number }[];
  /** WITNESS_MODEL_PATH, when the witness started from a pretrained model. */
  readonly startedFrom: string | null;
  /** Records the witness that judges the stream trained on (all of them when cross-fitted). */
  readonly trainedOn: number;
  /** Folds of the cross-fitting (0: too few records to calibrate; 1: a held-out share calibrated). */
  readonly folds: number;
  /** Records whose out-of-fold (or held-out) scores set the bars. */
  readonly calibratedOn: number;
  /** Out-of-fold (or held-out) accuracy; null without calibration records. */
  readonly heldOutAccuracy: number | null;
  /** The whole-record rule's bar on p(label) (calibrated, at most maxLabelProbability). */
  readonly labelThreshold: number;
  /** The bar per label, when each label calibrated its own (index = label); null: `labelThreshold` for all. */
  readonly labelThresholds: readonly number[] | null;
  /** The parts rule's calibrated threshold; null when the rule is off (dense model, no abuse labels, too few records). */
  readonly partThreshold: number | null;
}

export interface BuiltWitness extends WitnessModel {
  readonly info: WitnessInfo;
  /** The fixed model itself, for screens that need more than its probabilities (the gradient screen). */
  readonly learner: TfjsLearner;
}

/** The witness for the configured screens, or null (logged: why, and how to turn it on). */
export async function buildWitness(config: Config, logger: Pick<Logger, 'info' | 'warn'>): Promise<BuiltWitness | null> {
  if (!config.screens.enabled.includes('witness')) {
    if (config.witness === null) logger.warn(`witness screen off: ${WITNESS_OFF}`);
    else logger.info('trusted data is configured but SCREENS leaves out the witness screen: records are not judged by it');
    return null;
  }
  const w = config.witness;
  if (w === null) throw new TayguardError('CONFIG_INVALID', `SCREENS names witness but ${WITNESS_OFF}`);
  // Returns null (logged) when the witness is on only by default and its data is too thin: the screens then run without it.
  const settings = parseDetectorSettings(config.screens.settings).witness;
  const data: WitnessInfo['data'][number][] = [];
  const records: TrainingRecord[] = [];
  for (const [setting, file] of [['WITNESS_DATA', w.dataFile], ['CANARY_FILE', w.canaryFile]] as const) {
    if (file === undefined) continue;
    const read = await readLabelledRecords(file, config, setting);
    if (read.skipped.length > 0) logger.warn({ setting, file, refused: read.skipped.length, first: read.skipped[0] }, `${setting}: ${read.skipped.length} line(s) refused (the witness does not train on them)`);
    data.push({ setting, file: path.basename(file), sha256: read.sha256, records: read.records.length, skippedLines: read.skipped.length });
    records.push(...read.records);
  }
  if (w.modelPath === undefined && records.length === 0) {
    throw new TayguardError('CONFIG_INVALID', `the witness has no valid trusted record (${data.map((d) => `${d.setting} ${d.file}: ${d.skippedLines} lines refused`).join('; ')}): each line is one record of the README's contract`);
  }
  if (w.modelPath === undefined && records.length < MIN_WITNESS_RECORDS) {
    const why = `the witness needs at least ${MIN_WITNESS_RECORDS} trusted records to judge anyone, and has ${records.length} (${data.map((d) => `${d.records} from ${d.setting}`).join(', ')}): add public or consented records with WITNESS_DATA`;
    if (w.required) throw new TayguardError('CONFIG_INVALID', `SCREENS names witness, but ${why}, or leave witness out of SCREENS`);
    logger.warn(`witness screen off: ${why}`);
    return null;
  }
  const abuse = config.screens.abuseLabels;
  const parts = settings.parts && config.model.kind === 'text' && abuse.length > 0;
  // The fit is a function of the trusted files, the model's shape, the settings and fixed seeds: sidecars built in
  // one process with the same inputs (tests, the red-team benchmark's hundred runs) share it instead of repeating
  // six trainings. Nothing trains or disposes a built witness, so sharing it is safe.
  const key = JSON.stringify({ data: data.map((d) => [d.setting, d.sha256]), model: config.model, lr: config.training.learningRate, batch: config.training.batchSize, epochs: w.epochs, modelPath: w.modelPath ?? null, settings, abuse });
  const known = BUILT.get(key);
  if (known) {
    logger.info({ witness: known.info }, `witness reused (built earlier in this process from the same ${records.length} trusted record(s))`);
    return known;
  }
  const fitted = await fitWitness(records, {
    kind: config.model.kind,
    newLearner: () => witnessLearner(config, w.modelPath, settings.learningRate),
    epochs: w.epochs,
    minSteps: settings.minSteps,
    trainingWindows: settings.trainingWindows,
    batchSize: config.training.batchSize,
    folds: settings.folds,
    heldOut: settings.heldOut,
    falseQuarantine: settings.falseQuarantine,
    maxLabelProbability: settings.maxLabelProbability,
    minPartThreshold: settings.minPartThreshold,
    perLabel: settings.perLabel,
    parts: parts ? { tokens: settings.partTokens, maxChars: settings.maxChars, abuse } : null,
  });
  if (fitted.labelThreshold === undefined) logger.warn({ records: records.length }, `the witness's bar is not calibrated (${MIN_CALIBRATION} out-of-fold records needed): it holds back a label it gives less than maxLabelProbability (${settings.maxLabelProbability})`);
  if (parts && fitted.partThreshold === undefined) {
    logger.warn({ acceptableRecords: fitted.partCalibration }, `the witness's parts rule is off: ${fitted.partCalibration} trusted records with a label outside ABUSE_LABELS, ${MIN_CALIBRATION} needed to calibrate it; add trusted records (WITNESS_DATA)`);
  }
  const { learner, predict, windowProbabilities, labelThreshold, labelThresholds, partThreshold } = fitted;
  const info: WitnessInfo = {
    data,
    startedFrom: w.modelPath ?? null,
    trainedOn: fitted.trainedOn,
    folds: fitted.folds,
    calibratedOn: fitted.calibratedOn,
    heldOutAccuracy: fitted.accuracy,
    labelThreshold: labelThreshold ?? settings.maxLabelProbability,
    labelThresholds: labelThresholds ?? null,
    partThreshold: partThreshold ?? null,
  };
  logger.info({ witness: info }, `witness built from ${records.length} trusted record(s)${w.modelPath ? ` and ${w.modelPath}` : ''}: fixed, never served, never trained on the stream`);
  const built: BuiltWitness = {
    predict,
    ...(windowProbabilities ? { windowProbabilities } : {}),
    ...(labelThreshold !== undefined ? { labelThreshold } : {}),
    ...(labelThresholds !== undefined ? { labelThresholds } : {}),
    ...(partThreshold !== undefined ? { partThreshold } : {}),
    info,
    learner,
  };
  BUILT.set(key, built);
  while (BUILT.size > MAX_BUILT) BUILT.delete(BUILT.keys().next().value as string);
  return built;
}

/** Witnesses built in this process, by what they were fitted from (a few: one per distinct trusted set and model). */
const BUILT = new Map<string, BuiltWitness>();
const MAX_BUILT = 4;

/** Forget the witnesses built so far (a test that checks two fits agree). */
export function forgetBuiltWitnesses(): void {
  BUILT.clear();
}

async function witnessLearner(config: Config, modelPath: string | undefined, rate: number | undefined): Promise<TfjsLearner> {
  const { kind, numClasses, hiddenUnits, inputDim } = config.model;
  // Plain SGD on trusted data: by default the non-private learning rate of this model kind (src/config.ts).
  const learningRate = rate ?? defaultLearningRate(kind, hiddenUnits, false);
  if (modelPath === undefined) {
    return new TfjsLearner(buildModel({ inputDim, numClasses, hiddenUnits, seed: 17 }), featurizerFor(kind, inputDim), { learningRate });
  }
  if ((await readPretrainInfo(modelPath)) === null) {
    throw new TayguardError('CONFIG_INVALID', `WITNESS_MODEL_PATH ${modelPath} has no pretrain.json: give a model written by \`tayguard pretrain --public … --out DIR\` (its data is declared public), or unset it`);
  }
  const model = await loadLayersModelFromDir(modelPath);
  const dim = model.inputs[0]?.shape[1];
  if (typeof dim !== 'number') throw new TayguardError('MODEL_INVALID', `WITNESS_MODEL_PATH ${modelPath}: the model input must be [batch, features]`);
  // A text witness may hash to another width than the served model; dense records have exactly FEATURE_DIM features.
  if (kind === 'dense' && dim !== inputDim) throw new TayguardError('MODEL_INVALID', `WITNESS_MODEL_PATH ${modelPath} reads ${dim} features but FEATURE_DIM=${inputDim}: make them agree`);
  const learner = new TfjsLearner(model, featurizerFor(kind, dim), { learningRate });
  if (learner.numClasses !== numClasses) throw new TayguardError('MODEL_INVALID', `WITNESS_MODEL_PATH ${modelPath} outputs ${learner.numClasses} classes but NUM_CLASSES=${numClasses}: make them agree`);
  return learner;
}
