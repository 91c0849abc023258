/**
 * Witness: labels judged by a model the public surface never serves and the stream never trains (issue 10,
 * "no oracle"). The live-model label-consistency screen (label-consistency.ts) asks the very model that
 * POST /v1/predict serves, so an attacker pads poison until /v1/predict says it passes. The witness is built
 * once, at start-up, from data the deployment vouches for (src/witness.ts: WITNESS_DATA, the update gate's
 * CANARY_FILE, a WITNESS_MODEL_PATH from `tayguard pretrain`) and then stays FIXED: it is never published, never
 * answers a request and never learns from the stream.
 *
 * Two rules, both functions of the record and the fixed witness only — so this is a PER-RECORD screen: what it
 * decides about a record x only decides whether x's own slot is empty, inside the DP guarantee (docs/privacy.md):
 * - `witness_disagrees`: the witness gives the record's label probability below its calibrated `labelThreshold`
 *   (at most `maxLabelProbability`) and prefers another class (a plain label flip: spam sent as ham, a "7" sent
 *   as "1"). Text and dense records.
 * - `witness_abusive_part` (text, when abuse labels are configured): a record whose label says "acceptable" (not
 *   one of `abuseLabels`) holds a window of `partTokens` tokens that the witness puts in an abuse class with
 *   probability above the witness's calibrated `partThreshold`. Padding a spam mail with ham words until a
 *   bag-of-words model calls the WHOLE mail ham leaves its spam windows spam: of 120 SpamAssassin spam mails
 *   padded until the public model gave p(ham) ≥ 0.32, the whole-record rule of a witness trained on 1,000 other
 *   mails held back 67 and the parts rule 33 more (test/src/witness.test.ts, appended padding). The rule
 *   is directional on purpose: a record labelled with an abuse class may contain benign parts (spam carries
 *   filler text), and it does not teach the model that the abusive part is acceptable.
 *
 * Windows step by half their length, so every run of `partTokens / 2` consecutive tokens lies inside one window.
 * Cost: one witness forward pass for the whole record, and for text labelled "acceptable" one per window over the
 * first `maxChars` characters (linear in the capped length; the witness's forward pass over a sparse hashed row is
 * a few µs, middleware/fast-predict.ts).
 */
import type { RawMessage, TrainingRecord } from '../core/record';
import type { Payload } from '../middleware/featurize';
import { tokenize } from '../middleware/featurize';
import { windowSpans } from '../middleware/windows';
import { ACCEPT, type Detector, type Reason, type Verdict } from './types';

/** The fixed witness a chain judges with (src/witness.ts builds it). */
export interface WitnessModel {
  /** Class probabilities for one record's payload. */
  predict(payload: Payload): ArrayLike<number>;
  /**
   * Probability of the label below which a record is held back, calibrated on held-out trusted records (never
   * above `maxLabelProbability`). Undefined: `maxLabelProbability` alone.
   */
  readonly labelThreshold?: number;
  /**
   * The same bar per label (index = label), when each label had enough trusted records to calibrate its own;
   * a label past its end, or undefined: `labelThreshold`.
   */
  readonly labelThresholds?: readonly number[];
  /**
   * Probability of the abuse classes in one window above which an "acceptable"-labelled text is held back;
   * calibrated on held-out trusted records. Undefined: no calibration data, the parts rule is off.
   */
  readonly partThreshold?: number;
  /**
   * Class probabilities of each of `textWindows(text, tokens, maxChars)`, in order, when the witness can compute
   * them faster than one `predict` per window's text (src/witness.ts: hashed rows built once per token).
   */
  windowProbabilities?(text: string, tokens: number, maxChars: number): Iterable<ArrayLike<number>>;
}

export interface WitnessSettings {
  /** `witness_disagrees` when the witness gives the label less than this (and its calibrated bar) and prefers another class. */
  readonly maxLabelProbability: number;
  /** Judge windows of text labelled "acceptable" (needs `abuseLabels` and a calibrated witness). */
  readonly parts: boolean;
  /** Window length in tokens (windows step by half of it). */
  readonly partTokens: number;
  /** Characters of text the windows cover (bounds the cost; the default covers the whole MAX_TEXT_CHARS). */
  readonly maxChars: number;
  /** Classes whose label says "this content is bad" (e.g. spam = 1); chain-wide (filters/config.ts). */
  readonly abuseLabels?: readonly number[];
}

/** Windows of `tokens` tokens over the first `maxChars` characters, stepping by half a window; one for short texts. */
export function textWindows(text: string, tokens: number, maxChars: number): string[] {
  const words = tokenize(text.length > maxChars ? text.slice(0, maxChars) : text);
  return windowSpans(words.length, tokens).map(([from, to]) => words.slice(from, to).join(' '));
}

/** The largest probability, over the text's windows, that the witness gives the abuse classes together. */
export function abusivePartScore(witness: Pick<WitnessModel, 'predict' | 'windowProbabilities'>, text: string, abuse: readonly number[], tokens: number, maxChars: number): number {
  let best = 0;
  const rows = witness.windowProbabilities?.(text, tokens, maxChars) ?? textWindows(text, tokens, maxChars).map((w) => witness.predict({ text: w }));
  for (const p of rows) {
    let s = 0;
    for (const a of abuse) s += a < p.length ? p[a] : 0;
    if (s > best) best = s;
  }
  return best;
}

export class WitnessDetector implements Detector {
  readonly name = 'witness';
  /** The decision reads the record and the fixed witness only (docs/privacy.md, "Screening"). */
  readonly scope = 'record' as const;
  private readonly abuse: readonly number[];

  constructor(
    readonly settings: WitnessSettings,
    private readonly witness: WitnessModel,
  ) {
    this.abuse = settings.abuseLabels ?? [];
  }

  screen(record: TrainingRecord, _raw?: RawMessage): Verdict {
    const s = this.settings;
    const payload: Payload = record.features !== undefined ? { features: record.features } : { text: record.text ?? '' };
    const probs = this.witness.predict(payload);
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    const p = record.label < probs.length ? probs[record.label] : 0;
    const reasons: Reason[] = [];
    const bar = Math.min(s.maxLabelProbability, this.witness.labelThresholds?.[record.label] ?? this.witness.labelThreshold ?? s.maxLabelProbability);
    if (p < bar && best !== record.label) {
      reasons.push({
        stage: this.name,
        code: 'witness_disagrees',
        message: `the witness (a fixed model trained on trusted data, never served) gives label ${record.label} probability ${p.toExponential(1)} and says ${best} at ${(100 * probs[best]).toFixed(0)}%; held back below ${bar.toExponential(1)}`,
        score: p,
        threshold: bar,
      });
    }
    const threshold = this.witness.partThreshold;
    if (reasons.length === 0 && s.parts && threshold !== undefined && this.abuse.length > 0 && record.text && !this.abuse.includes(record.label)) {
      const score = abusivePartScore(this.witness, record.text, this.abuse, s.partTokens, s.maxChars);
      if (score > threshold) {
        reasons.push({
          stage: this.name,
          code: 'witness_abusive_part',
          message: `labelled ${record.label} (acceptable), but a ${s.partTokens}-token part of the text is abusive class ${this.abuse.join('/')} to the witness at ${(100 * score).toFixed(1)}% (held back above ${(100 * threshold).toFixed(1)}%, calibrated on trusted records): padding with harmless words does not make the rest acceptable`,
          score,
          threshold,
        });
      }
    }
    return reasons.length > 0 ? { kind: 'quarantine', reasons } : ACCEPT;
  }
}
