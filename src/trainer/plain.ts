/** Non-private minibatch SGD (DP_ENABLED=false): admitted records are trained in batches of BATCH_SIZE. */
import type { Learner } from '../../middleware/learner';
import type { Metrics } from '../metrics';
import type { TrainingRecord } from '../record';
import { createStepRunner, type StepStage } from './step';
import type { AdmitResult, Trainer } from './types';

export class PlainTrainer implements Trainer {
  readonly mode = 'plain' as const;
  private buffer: TrainingRecord[] = [];
  private readonly step: ReturnType<typeof createStepRunner>;
  stepsSinceCheckpoint = 0;
  /** Plain mode: a record is trained by the next flush, so one step of progress completes its exposure. */
  progress = 0;
  readonly exposure = 1;

  constructor(
    learner: Learner,
    metrics: Metrics,
    private readonly batchSize: number,
    stages: readonly StepStage[] = [],
  ) {
    this.step = createStepRunner(learner, metrics, stages);
  }

  async admit(record: TrainingRecord): Promise<AdmitResult> {
    this.buffer.push(record);
    if (this.buffer.length >= this.batchSize) await this.flush();
    return { kind: 'trained' };
  }

  /** Plain SGD has no schedule to keep: a message that is not trained changes nothing. */
  pass(): Promise<void> {
    return Promise.resolve();
  }

  admitCanary(record: TrainingRecord): Promise<AdmitResult> {
    return this.admit(record);
  }

  async flush(): Promise<void> {
    while (this.buffer.length > 0) {
      await this.step(this.buffer.splice(0, this.batchSize));
      this.stepsSinceCheckpoint += 1;
      this.progress += 1;
    }
  }

  tick(): Promise<void> {
    return Promise.resolve();
  }

  markCheckpointed(): void {
    this.stepsSinceCheckpoint = 0;
  }

  toJSON(): null {
    return null;
  }

  budget(): undefined {
    return undefined;
  }
}
