/** Screens in order, as the pipeline runs them (src/pipeline.ts): the first quarantine stops the chain. */
import type { Detector, Verdict } from '../../filters/types';
import type { TrainingRecord } from '../../core/record';

/** The raw Kafka message the screens get beside the record (no screen here reads it). */
export const RAW = { topic: 't', partition: 0, offset: '0', key: null, value: null };

export function runChain(detectors: readonly Detector[], r: TrainingRecord): Verdict {
  for (const d of detectors) {
    const v = d.screen(r, RAW);
    if (v.kind === 'quarantine') return v;
  }
  return { kind: 'accept' };
}
