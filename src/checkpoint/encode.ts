/**
 * What a checkpoint holds, written in one place; src/checkpoint/resume.ts reads it back (keep the two in step).
 *
 * The header: seq, time, model identity, weight specs, optimizer, per-partition offsets (next to read), recent
 * record ids, outcome totals, the trainer's privacy ledger and sampling pool (`accountant`), and in `extra` the
 * published model version, the screens' state, the audit round, the update gate's measurements and the served
 * moving average's state. The weight bytes are blocks of one model's size each: the trained weights, then the
 * served average (`extra.average.offset`), then the update gate's best model (`extra.gate.bestOffset`), each
 * present or not. src/checkpoint/store.ts frames the whole with a magic, a length and a SHA-256.
 *
 * The screens' state is not in the JSON header but in a section after the weight blocks: one JSON text per stage,
 * their names and byte lengths in `extra.screensSection` (`encodeScreens`). The header used to hold it, one JSON
 * string for everything: about a thousand 20,000-character records of fresh tokens pushed it past V8's string
 * limit (~512 MB), every checkpoint failed and serving froze (issue 10). Each stage's text is now bounded by its
 * own byte budget (SCREEN_STATE_BYTES, filters/evidence.ts), far below the limit, and no string holds two of them.
 * Checkpoints with `extra.screens` in the header are still read (src/checkpoint/resume.ts).
 */
import type { WeightsSnapshot } from '../../middleware/learner';
import type { CheckpointHeader } from './store';
import type { ModelIdentity } from './resume';

export interface CheckpointContents {
  readonly seq: number;
  readonly createdAt: string;
  readonly model: ModelIdentity;
  readonly learningRate: number;
  readonly topic: string;
  /** Next offset to read per partition (Kafka's commit semantics). */
  readonly offsets: readonly { readonly partition: number; readonly offset: string }[];
  readonly dedup: unknown;
  readonly counts: unknown;
  /** The trainer's state (privacy ledger and pool); null for plain SGD. */
  readonly accountant: unknown;
  readonly modelVersion: number;
  readonly screens: unknown;
  readonly audit?: unknown;
  /** The update gate's state, and its best model when it has one. */
  readonly gate?: { readonly state: object; readonly best?: WeightsSnapshot };
  /** The served moving average's state and weights (AVERAGE_DECAY > 0). */
  readonly average?: { readonly state: object; readonly weights: WeightsSnapshot };
  readonly weights: WeightsSnapshot;
}

/** Where the screens' section sits in the bytes after the header, and its parts in order: [stage, bytes]. */
export interface ScreensSection {
  readonly offset: number;
  readonly parts: readonly (readonly [string, number])[];
}

/** Each top-level key of the screens' state as its own JSON text, concatenated. */
export function encodeScreens(state: unknown, offset: number): { section: ScreensSection; bytes: Buffer } {
  const parts: [string, number][] = [];
  const buffers: Buffer[] = [];
  for (const [name, value] of Object.entries((state ?? {}) as Record<string, unknown>)) {
    const b = Buffer.from(JSON.stringify(value) ?? 'null');
    parts.push([name, b.length]);
    buffers.push(b);
  }
  return { section: { offset, parts }, bytes: Buffer.concat(buffers) };
}

export function encodeCheckpoint(c: CheckpointContents): { header: CheckpointHeader; weights: Buffer } {
  const { weights: snapshot, average, gate } = c;
  const averaged = average?.weights;
  const gateBest = gate?.best;
  // Weight bytes: trained, then averaged, then the gate's best model, each block one model long (checkpoint/resume.ts).
  const blocks = [snapshot.data, ...(averaged ? [averaged.data] : []), ...(gateBest ? [gateBest.data] : [])];
  const weightBytes = blocks.reduce((n, b) => n + b.length, 0);
  const screens = encodeScreens(c.screens, weightBytes);
  const header: CheckpointHeader = {
    seq: c.seq,
    createdAt: c.createdAt,
    model: c.model,
    weightSpecs: snapshot.specs,
    optimizer: { name: 'sgd', learningRate: c.learningRate },
    offsets: { [c.topic]: Object.fromEntries(c.offsets.map((o) => [String(o.partition), o.offset])) },
    dedup: c.dedup,
    counts: c.counts,
    accountant: c.accountant,
    extra: {
      modelVersion: c.modelVersion,
      screensSection: screens.section,
      ...(c.audit !== undefined ? { audit: c.audit } : {}),
      ...(gate ? { gate: { ...gate.state, ...(gateBest ? { bestOffset: snapshot.data.length * (averaged ? 2 : 1) } : {}) } } : {}),
      // The averaged weights follow the training weights in the same file, from byte `offset`.
      ...(average ? { average: { ...average.state, offset: snapshot.data.length } } : {}),
    },
  };
  return { header, weights: Buffer.concat([...blocks, screens.bytes]) };
}
