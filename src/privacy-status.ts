/**
 * The body of GET /v1/privacy/budget: what is protected and how much of the budget is spent
 * (docs/architecture.md invariant 4: the guarantee is stated, not implied). With DP off it says mechanism "none"
 * and epsilon null — never a number.
 */
import type { Config } from './config';
import type { Trainer } from '../train/types';
import { DpTrainer } from '../train/dp';

export interface BudgetResponse {
  unit: 'record' | 'source';
  adjacency: string | null;
  delta: number | null;
  accountant: 'rdp' | 'prv' | null;
  epsilon: { limit: number; spent: number; remaining: number; exhausted: boolean } | null;
  /** Group privacy for replacing one record by another (two zero-out steps): (2ε, (1 + e^ε)δ). */
  replaceOne?: { epsilon: number; delta: number };
  epsilonRdp: number | null;
  epsilonPrv: number | null;
  epsilonPrvUnavailable?: string | null;
  mechanism:
    | 'none'
    | {
        name: 'dp-sgd';
        noiseMultiplier: number;
        clipNorm: number;
        adaptiveClip: { targetQuantile: number; learningRate: number; countNoiseStd: number; gradientNoiseMultiplier: number } | null;
        sampleRate: number;
        window: number;
        steps: number;
        stepEveryMessages: number;
        expectedBatchSize: number;
        maxRecordsPerSource: number | null;
        sampling: string;
        clipping: { perSource: boolean; influence: { matureDays: number; minWeight: number } | null; note: string };
      };
  randomness: 'crypto' | 'seeded' | null;
  screening: { stage: string; scope: 'cross-record'; note: string }[];
  statement: string;
  updatedAt: string | null;
  /**
   * What the model started from: fresh weights, a model pretrained on declared-public data (`tayguard pretrain`),
   * or another MODEL_PATH model. Data behind a starting model is not the stream and not covered by ε.
   */
  start: { from: 'fresh' } | { from: 'public-pretraining'; publicData: { file: string; sha256: string; records: number } } | { from: 'model-path' };
  /** The last membership-inference audit round (src/audit/auditor.ts), null when off or not yet completed. */
  audit?: unknown;
}

export function budgetStatus(
  config: Config,
  trainer: Trainer | undefined,
  updatedAt: string | null,
  screening: BudgetResponse['screening'] = [],
  start: BudgetResponse['start'] = { from: 'fresh' },
): BudgetResponse {
  const p = config.privacy;
  if (p === null || !(trainer instanceof DpTrainer)) {
    return {
      unit: 'record',
      adjacency: null,
      delta: null,
      accountant: null,
      epsilon: null,
      epsilonRdp: null,
      epsilonPrv: null,
      mechanism: 'none',
      randomness: null,
      screening,
      statement: 'Training is NOT differentially private (DP_ENABLED=false): the model may reveal whether a record was trained on. No ε is reported because there is none.',
      updatedAt,
      start,
    };
  }
  const s = trainer.budget();
  const source = p.unit === 'source';
  const accountant = trainer.ledger.kind;
  const spent = s.publicSpent;
  const operator = config.http.operatorAuth === 'token'
    ? 'It does not cover the operator surface (/metrics, the detail of GET /v1/model, the operator half of GET /v1/history and the status page, the admin API, logs), which holds exact counts, step timings and the update gate\'s live state and answers only with ADMIN_TOKEN. '
    : 'It does not cover the operator surface (/metrics, the detail of GET /v1/model, the operator half of GET /v1/history and the status page, the admin API, logs), which holds exact counts, step timings and the update gate\'s live state and is OPEN (OPERATOR_AUTH=open): keep it off networks the public reaches, or set ADMIN_TOKEN. ';
  return {
    unit: p.unit,
    adjacency: source
      ? 'zero-out: every message of one source replaced by an empty message (the number, order and timing of messages are public)'
      : 'zero-out: one record — the messages bearing its (source, id) within the dedup horizon — replaced by empty messages (the number, order and timing of messages are public)',
    delta: p.delta,
    accountant,
    epsilon: { limit: s.epsilonLimit, spent, remaining: Math.max(0, s.epsilonLimit - spent), exhausted: s.exhausted || s.exhaustedAndStopped },
    replaceOne: { epsilon: 2 * spent, delta: (1 + Math.exp(spent)) * p.delta },
    epsilonRdp: source ? null : s.epsilonRdp,
    epsilonPrv: source ? null : s.epsilonPrv,
    epsilonPrvUnavailable: source ? null : s.prvUnavailableReason,
    mechanism: {
      name: 'dp-sgd',
      noiseMultiplier: p.noiseMultiplier,
      clipNorm: trainer.clipNorm,
      adaptiveClip:
        p.adaptiveClip && trainer.clipper ? { ...p.adaptiveClip, gradientNoiseMultiplier: trainer.clipper.gradientNoiseMultiplier } : null,
      sampleRate: p.sampleRate,
      window: p.window,
      steps: s.steps,
      stepEveryMessages: p.stepEveryRecords,
      expectedBatchSize: trainer.expectedBatchSize,
      maxRecordsPerSource: source ? p.maxRecordsPerSource : null,
      clipping: clippingOf(p, source),
      sampling: `Poisson: every consumed message takes a slot for the next ${p.window} steps, a step runs after every ${p.stepEveryRecords} messages, and each slot joins each step with probability ${p.sampleRate}; a slot holds the record only if it was admitted${source ? ` (at most ${p.maxRecordsPerSource} per source in the window)` : ''}`,
    },
    randomness: trainer.randomness,
    screening,
    statement:
      `(${spent.toFixed(3)}, ${p.delta.toExponential()})-differential privacy for ${source ? 'each source (all of its messages together)' : 'each record (the messages bearing its source and id within the dedup horizon)'}, ` +
      `under zero-out adjacency (its messages replaced by empty ones; replacing it by another record costs at most (${(2 * spent).toFixed(3)}, ${((1 + Math.exp(spent)) * p.delta).toExponential(2)})), ` +
      `with respect to the public surface: published model versions, predictions, and this budget, all as of the last checkpoint; by the ${accountant.toUpperCase()} accountant. ` +
      operator +
      (start.from === 'public-pretraining'
        ? `The model started from one pretrained on data declared public (${start.publicData.file}, sha256 ${start.publicData.sha256.slice(0, 12)}…, ${start.publicData.records} records): that data is not covered — it cost no ε because it is not the stream. `
        : start.from === 'model-path'
          ? 'The model started from MODEL_PATH: whatever that model was trained on is not covered by this guarantee. '
          : '') +
      (source ? 'In source mode the public ε is the bound for a source present in every step so far (each source is also held to the limit); the worst source\'s exact ε is operator-only. ' : '') +
      (trainer.randomness === 'seeded' ? 'WARNING: DP_SEED is set — noise and sampling are reproducible, NOT secure; the guarantee does not hold. ' : '') +
      (screening.length > 0 ? 'Screening stages that look across records are outside the guarantee (see screening). ' : '') +
      'See docs/privacy.md for what this covers and what it does not.',
    updatedAt,
    start,
  };
}

/** The public description of how a step bounds records and accounts (docs/privacy.md: none of it changes ε). */
function clippingOf(p: NonNullable<Config['privacy']>, source: boolean): { perSource: boolean; influence: { matureDays: number; minWeight: number } | null; note: string } {
  const perSource = !source && p.sourceClip;
  const influence = p.influence ? { matureDays: p.influence.matureMs / 86_400_000, minWeight: p.influence.minWeight } : null;
  const parts = [
    source ? "each source's sampled records are summed, then clipped to clipNorm together (the privacy unit)" : 'each record is clipped to clipNorm',
    ...(perSource ? ["the clipped records of one source in a step are summed and clipped to clipNorm again, so an account adds at most one record's worth per step"] : []),
    ...(influence ? [`a record whose account (sourceMeta.createdAt) is younger than ${influence.matureDays} days counts max(${influence.minWeight}, age/${influence.matureDays} days) of a mature one`] : []),
  ];
  return { perSource, influence, note: `${parts.join('; ')}. The sensitivity to one ${source ? 'source' : 'record'} stays clipNorm, so none of this changes the ε charged (docs/privacy.md).` };
}
