/**
 * The body of GET /v1/privacy/budget: what is protected and how much of the budget is spent
 * (ARCHITECTURE.md invariant 4: the guarantee is stated, not implied). With DP off it says mechanism "none"
 * and epsilon null — never a number.
 */
import type { Config } from './config';
import type { Trainer } from './trainer/types';
import { DpTrainer } from './trainer/dp';

export interface BudgetResponse {
  unit: 'record' | 'source';
  adjacency: string | null;
  delta: number | null;
  accountant: 'rdp' | 'prv' | null;
  epsilon: { limit: number; spent: number; remaining: number; exhausted: boolean } | null;
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
        expectedBatchSize: number;
        maxRecordsPerSource: number | null;
        sampling: string;
      };
  randomness: 'crypto' | 'seeded' | null;
  screening: { stage: string; scope: 'cross-record'; note: string }[];
  statement: string;
  updatedAt: string | null;
  /** The last membership-inference audit round (src/audit.ts), null when off or not yet completed. */
  audit?: unknown;
}

export function budgetStatus(
  config: Config,
  trainer: Trainer | undefined,
  updatedAt: string | null,
  screening: BudgetResponse['screening'] = [],
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
    };
  }
  const s = trainer.budget();
  const source = p.unit === 'source';
  return {
    unit: p.unit,
    adjacency: source ? 'add or remove all records of one source' : 'add or remove one record',
    delta: p.delta,
    accountant: p.accountant,
    epsilon: { limit: s.epsilonLimit, spent: s.spent, remaining: s.remaining, exhausted: s.exhausted || s.exhaustedAndStopped },
    epsilonRdp: s.epsilonRdp,
    epsilonPrv: s.epsilonPrv,
    epsilonPrvUnavailable: s.prvUnavailableReason,
    mechanism: {
      name: 'dp-sgd',
      noiseMultiplier: p.noiseMultiplier,
      clipNorm: trainer.clipNorm,
      adaptiveClip:
        p.adaptiveClip && trainer.clipper ? { ...p.adaptiveClip, gradientNoiseMultiplier: trainer.clipper.gradientNoiseMultiplier } : null,
      sampleRate: p.sampleRate,
      window: p.window,
      steps: s.steps,
      expectedBatchSize: trainer.expectedBatchSize,
      maxRecordsPerSource: source ? p.maxRecordsPerSource : null,
      sampling: `Poisson: each admitted ${source ? 'record (at most ' + p.maxRecordsPerSource + ' per source in the window)' : 'record'} joins each of the next ${p.window} steps with probability ${p.sampleRate}`,
    },
    randomness: trainer.randomness,
    screening,
    statement:
      `(${s.spent.toFixed(3)}, ${p.delta.toExponential()})-differential privacy for ${source ? 'each source (all of its records together)' : 'each record'} ` +
      `with respect to everything the sidecar publishes (model versions, predictions), by the ${p.accountant.toUpperCase()} accountant. ` +
      (trainer.randomness === 'seeded' ? 'WARNING: DP_SEED is set — noise and sampling are reproducible, NOT secure; the guarantee does not hold. ' : '') +
      (screening.length > 0 ? 'Screening stages that look across records are outside the guarantee (see screening). ' : '') +
      'See docs/privacy.md for what this covers and what it does not.',
    updatedAt,
  };
}
