/** The update gate's trusted canary set: a JSONL file of records in the record contract, checked like the stream. */
import { readFileSync } from 'node:fs';
import type { Config } from './config';
import { TayguardError } from './errors';
import { parseRecord } from '../filters/schema';
import type { Learner } from '../middleware/learner';
import type { Canaries } from '../filters/update-gate';
import type { TrainingRecord } from './record';

export function loadCanaries(config: Config, learner: Learner, file: string): Canaries {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} cannot be read: ${(e as Error).message}`);
  }
  const records: TrainingRecord[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const parsed = parseRecord(
      { value: Buffer.from(line) },
      {
        numClasses: config.model.numClasses,
        task: config.model.kind,
        featureDim: config.model.kind === 'dense' ? learner.featurizer.dim : undefined,
        maxTextChars: config.limits.maxTextChars,
        maxMessageBytes: config.limits.maxMessageBytes,
      },
    );
    if (parsed.ok) records.push(parsed.record);
    else if (problems.length < 5) problems.push(`line ${i + 1}: ${parsed.reasons.map((r) => r.message).join('; ')}`);
    else problems.push('');
  });
  if (problems.length > 0) {
    throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} has ${problems.length} invalid line(s):\n  ${problems.filter(Boolean).join('\n  ')}`);
  }
  if (records.length < 20) throw new TayguardError('CONFIG_INVALID', `CANARY_FILE ${file} holds ${records.length} records; the gate needs at least 20 to tell an update's harm from noise`);
  const { x, y } = learner.batch(records, records.map((r) => r.label));
  return { x, y, size: records.length };
}
