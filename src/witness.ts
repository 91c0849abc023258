/**
 * Builds the witness the `witness` screen judges labels with (filters/witness.ts): a model trained once, at
 * start-up, on data the deployment vouches for — WITNESS_DATA (public or consented records, the `tayguard pretrain
 * --public` format), the update gate's CANARY_FILE (unless WITNESS_CANARIES=false), optionally starting from a
 * WITNESS_MODEL_PATH written by `tayguard pretrain` — and never again: it is not trained on the stream, not
 * published, not served by /v1/predict, not in the checkpoint (the same files and seed rebuild the same witness at
 * every start). Its training is plain SGD: the data is not the stream, so it costs no privacy (as for
 * `tayguard pretrain`).
 *
 * A share of the trusted records (`heldOut`, 25%) is kept out of training to calibrate both rules, so that each
 * would hold back at most `falseQuarantine` (0.5%) of them: the whole-record bar is that quantile of the held-out
 * records' p(label), capped at maxLabelProbability (a weak witness is confidently wrong more often: on MNIST
 * pixels a fixed 5% bar held back 3.1% of clean digits); the parts bar is the (1 − falseQuarantine) quantile of
 * the held-out "acceptable" records' part scores, never below minPartThreshold. With fewer than MIN_CALIBRATION
 * such records the parts rule stays off and the whole-record bar is the cap (logged). For text,
 * training also sees each trusted record's windows (the unit the parts rule judges), labelled like the record: a
 * witness that has seen short texts is sharper on them (in a prototype on SpamAssassin, at the same 1% clean false
 * quarantine, it caught 80% instead of 62% of padded spam).
 */
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import type { Config } from './config';
import { defaultLearningRate } from './config';
import { WITNESS_OFF } from './config-witness';
import type { Logger } from './logger';
import { TayguardError } from '../core/errors';
import type { TrainingRecord } from '../core/record';
import { parseDetectorSettings } from '../filters/config';
import { abusivePartScore, textWindows, type WitnessModel } from '../filters/witness';
import { buildModel, featurizerFor } from '../middleware/build';
import { fastPredictor, sparseForward } from '../middleware/fast-predict';
import { hashedWindowRows } from '../middleware/windows';
import { loadLayersModelFromDir } from '../middleware/files';
import { TfjsLearner } from '../middleware/learner';
import { readLabelledRecords, readPretrainInfo, trainEpochs } from './pretrain/pretrain';

/** Held-out records needed to calibrate a rule. */
export const MIN_CALIBRATION = 20;
/**
 * Trusted records below which a witness trained from scratch is too weak to judge anyone (without a
 * WITNESS_MODEL_PATH to start from): 300 SpamAssassin mails already held back 2% of clean ham.
 */
export const MIN_WITNESS_RECORDS = 100;
/** Windows of one trusted text added to the witness's training (evenly spread; bounds start-up time). */
const MAX_WINDOWS_PER_RECORD = 8;

export interface WitnessInfo {
  /** The trusted files: name, sha256, valid records, refused lines. */
  readonly data: readonly { readonly setting: 'WITNESS_DATA' | 'CANARY_FILE'; readonly file: string; readonly sha256: string; readonly records: number; readonly skippedLines: number }[];
  /** WITNESS_MODEL_PATH, when the witness started from a pretrained model. */
  readonly startedFrom: string | null;
  readonly trainedOn: number;
  readonly heldOut: number;
  /** Held-out accuracy of the witness; null without held-out records. */
  readonly heldOutAccuracy: number | null;
  /** The whole-record rule's bar on p(label) (calibrated, at most maxLabelProbability). */
  readonly labelThreshold: number;
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
  const learner = await witnessLearner(config, w.modelPath, settings.learningRate);

  // Held-out share for calibration (deterministic: same files, same split, same witness at every start).
  const order = records.map((_, i) => i);
  const rng = seedrandom('tayguard-witness-split');
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nHeld = records.length >= 2 * MIN_CALIBRATION ? Math.ceil(settings.heldOut * records.length) : 0;
  const held = order.slice(0, nHeld).map((i) => records[i]);
  const train = order.slice(nHeld).map((i) => records[i]);

  const abuse = config.screens.abuseLabels;
  const parts = settings.parts && config.model.kind === 'text' && abuse.length > 0;
  const trainSet = parts ? train.flatMap((r) => [r, ...windowsOf(r, settings.partTokens, settings.maxChars)]) : train;
  if (trainSet.length > 0) {
    trainEpochs(learner, trainSet, { epochs: w.epochs, batchSize: config.training.batchSize, seed: 'tayguard-witness' });
  }
  const predict = fastPredictor(learner);
  // Windows scored from rows hashed once per token (middleware/windows.ts) when the witness is a Dense chain over hashed text.
  const forward = config.model.kind === 'text' ? sparseForward(learner) : undefined;
  const dim = learner.featurizer.dim;
  const windowProbabilities = forward ? (text: string, tokens: number, maxChars: number) => hashedWindowRows(text, dim, tokens, maxChars).map(forward) : undefined;
  const witness: Pick<WitnessModel, 'predict' | 'windowProbabilities'> = { predict, ...(windowProbabilities ? { windowProbabilities } : {}) };

  let heldOutAccuracy: number | null = null;
  let labelThreshold: number | undefined;
  if (held.length > 0) {
    const pLabel = held.map((r) => predict(payloadOf(r)));
    heldOutAccuracy = pLabel.filter((p, i) => p.indexOf(Math.max(...p)) === held[i].label).length / held.length;
    if (held.length >= MIN_CALIBRATION) {
      const sorted = pLabel.map((p, i) => p[held[i].label]).sort((a, b) => a - b);
      // The bar below which at most falseQuarantine of the held-out records lie (the next one up is not held back).
      labelThreshold = Math.min(settings.maxLabelProbability, sorted[Math.floor(settings.falseQuarantine * sorted.length)]);
    }
  }
  let partThreshold: number | undefined;
  if (parts) {
    const scores = held.filter((r) => !abuse.includes(r.label) && r.text).map((r) => abusivePartScore(witness, r.text as string, abuse, settings.partTokens, settings.maxChars));
    if (scores.length >= MIN_CALIBRATION) {
      scores.sort((a, b) => a - b);
      const q = scores[Math.min(scores.length - 1, Math.ceil((1 - settings.falseQuarantine) * scores.length) - 1)];
      partThreshold = Math.max(settings.minPartThreshold, q);
    } else {
      logger.warn({ acceptableHeldOut: scores.length }, `the witness's parts rule is off: ${scores.length} held-out trusted records with a label outside ABUSE_LABELS, ${MIN_CALIBRATION} needed to calibrate it; add trusted records (WITNESS_DATA)`);
    }
  }
  const info: WitnessInfo = {
    data,
    startedFrom: w.modelPath ?? null,
    trainedOn: train.length,
    heldOut: held.length,
    heldOutAccuracy,
    labelThreshold: labelThreshold ?? settings.maxLabelProbability,
    partThreshold: partThreshold ?? null,
  };
  logger.info({ witness: info }, `witness built from ${records.length} trusted record(s)${w.modelPath ? ` and ${w.modelPath}` : ''}: fixed, never served, never trained on the stream`);
  return { ...witness, ...(labelThreshold !== undefined ? { labelThreshold } : {}), ...(partThreshold !== undefined ? { partThreshold } : {}), info, learner };
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

function payloadOf(r: TrainingRecord) {
  return r.features !== undefined ? { features: r.features } : { text: r.text ?? '' };
}

/** Up to MAX_WINDOWS_PER_RECORD of a text record's windows (evenly spread), as records with the same label. */
function windowsOf(r: TrainingRecord, tokens: number, maxChars: number): TrainingRecord[] {
  if (!r.text) return [];
  const all = textWindows(r.text, tokens, maxChars);
  if (all.length <= 1) return [];
  const every = Math.max(1, Math.ceil(all.length / MAX_WINDOWS_PER_RECORD));
  return all.filter((_, i) => i % every === 0).map((text, i) => ({ ...r, id: `${r.id}#w${i}`, text }));
}
