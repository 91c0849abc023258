/**
 * Label consistency: the current model as a witness. ORACLE-EXPOSED: the model it consults is the one
 * POST /v1/predict serves (and the published versions contain), so an attacker can pad a poisoned record until
 * /v1/predict says it passes (issue 10: 87% of such a flood was admitted). Off by default; the `witness` screen
 * (witness.ts) judges labels by a fixed model trained on trusted data only, which nobody outside can query, and is
 * a per-record screen where this one reads the stream's running loss quantiles and trust (cross-record). A record whose label the model confidently rejects
 * (argmax ≠ label with probability ≥ `minConfidence`), with a loss −log p(label) above both `minLoss` and the
 * label's running `quantile` of losses (P², quantile.ts), is held back (`confident_model_disagrees`) when its
 * source's trust (trust.ts) is below `maxTrust`: established sources may correct the model, young ones may not.
 * With `trustedMinLoss` set, a trusted source's record is held back too when its loss is above that much higher
 * bar (e.g. ln 10: the model gives the label < 10%): established sources may still correct the model where it is
 * unsure, not flip what it is sure of (scenario C of bench:attacks: a few established sources flipping labels).
 * Inactive until the model has trained on `minModelRecords` records (`modelSeen()`), and per label until
 * `minPerClass` losses were observed. Losses enter the quantile clamped at the current threshold so that a flood
 * of flipped labels cannot raise the bar it is measured against.
 *
 * Cost: one `predict` call per record — the dependency decides how (a cached or batched forward pass);
 * everything else here is O(classes).
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import { P2_BYTES, P2Quantile, type P2State } from './quantile';

const INT_BYTES = 17;
import { corrupt, type EventClock, type SourceRegistry } from './trust';
import { ACCEPT, type Detector, type Verdict } from './types';

export interface LabelConsistencySettings {
  readonly quantile: number;
  readonly minConfidence: number;
  readonly minLoss: number;
  readonly maxTrust: number;
  /** Loss above which even a trusted source's record is held back; undefined = trusted sources always pass. */
  readonly trustedMinLoss?: number;
  readonly minModelRecords: number;
  readonly minPerClass: number;
}


export interface LabelConsistencyDeps {
  /** Class probabilities for a record from the current model. */
  readonly predict: (record: TrainingRecord) => ArrayLike<number>;
  /** Records the current model has trained on (warm-up). */
  readonly modelSeen: () => number;
  readonly registry: SourceRegistry;
  readonly clock: EventClock;
}

export interface LabelConsistencyState {
  readonly losses: readonly (readonly [number, P2State])[];
}

export class LabelConsistencyDetector implements Detector {
  readonly name = 'label-consistency';
  readonly scope = 'cross-record' as const;
  private readonly losses = new Map<number, P2Quantile>();

  constructor(
    readonly settings: LabelConsistencySettings,
    private readonly deps: LabelConsistencyDeps,
  ) {}

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const t = this.deps.clock.timeOf(record);
    this.deps.registry.observe(record, t);
    if (this.deps.modelSeen() < s.minModelRecords) return ACCEPT;
    const probs = this.deps.predict(record);
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    const p = record.label < probs.length ? probs[record.label] : 0;
    const loss = -Math.log(Math.max(p, 1e-12));
    let q = this.losses.get(record.label);
    if (!q) this.losses.set(record.label, (q = new P2Quantile(s.quantile)));
    const warm = q.count >= s.minPerClass;
    const threshold = warm ? Math.max(s.minLoss, q.value()) : Infinity;
    q.add(Math.min(loss, warm ? threshold : loss));
    if (!warm || loss <= threshold || best === record.label || probs[best] < s.minConfidence) return ACCEPT;
    const trust = this.deps.registry.trust(record.source, t);
    const trusted = trust >= s.maxTrust;
    if (trusted && !(s.trustedMinLoss !== undefined && loss > s.trustedMinLoss)) return ACCEPT;
    return {
      kind: 'quarantine',
      reasons: [
        {
          stage: this.name,
          code: 'confident_model_disagrees',
          message: trusted
            ? `the current model gives label ${record.label} probability ${p.toExponential(1)} (it says ${best} at ${(100 * probs[best]).toFixed(0)}%); loss ${loss.toFixed(2)} is above ${s.trustedMinLoss}, the bar for trusted sources like "${record.source}" (trust ${trust.toFixed(2)})`
            : `the current model gives label ${record.label} probability ${p.toExponential(1)} (it says ${best} at ${(100 * probs[best]).toFixed(0)}%); loss ${loss.toFixed(2)} is above the label's ${Math.round(100 * s.quantile)}th percentile ${threshold.toFixed(2)}, and source "${record.source}" is not yet trusted (trust ${trust.toFixed(2)} < ${s.maxTrust})`,
          score: loss,
          threshold: trusted ? (s.trustedMinLoss as number) : threshold,
        },
      ],
    };
  }

  /** Upper bound on the JSON bytes of `toJSON()`: one P² state per label (fixed by the number of classes). */
  get stateBytes(): number {
    return 32 + this.losses.size * (P2_BYTES + INT_BYTES);
  }

  toJSON(): LabelConsistencyState {
    return { losses: [...this.losses].map(([k, q]) => [k, q.toJSON()] as const) };
  }

  restore(state: LabelConsistencyState): void {
    if (!state || !Array.isArray(state.losses)) throw corrupt(this.name, 'expected { losses: [...] }');
    this.losses.clear();
    for (const [k, q] of state.losses) this.losses.set(k, P2Quantile.restore(q));
  }
}
