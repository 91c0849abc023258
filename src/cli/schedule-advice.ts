/**
 * What the DP schedule means at a given traffic rate, for `tayguard config check [--rate R]`.
 *
 * S (STEP_EVERY_RECORDS) and W (WINDOW_STEPS) are counted in consumed messages and steps, never in seconds: the
 * schedule may depend on public information only (docs/privacy.md). So the same settings are fresh on a busy
 * stream and slow on a quiet one, and the operator needs the conversion. The freshness rule of thumb — a new
 * pattern shows in the served model after roughly S/q + S/(1 − d) messages: the first expected use of a record plus
 * the served average's time constant — matches the utility benchmark's text stream (bench/utility.ts: ≈ 800
 * estimated at the text defaults, 615 measured on its reporting seeds, bench/results/utility.json).
 */
import type { Config } from '../config';

export interface ScheduleAdvice {
  /** S: messages between steps. */
  readonly stepEveryMessages: number;
  /** W·S: messages a record's window spans while the stream flows. */
  readonly windowMessages: number;
  /** q·W·S: expected records in a step (the noise is divided by it). */
  readonly expectedBatch: number;
  /** S/q + S/(1 − d): messages until a new pattern shows in the served model (rule of thumb). */
  readonly freshnessMessages: number;
  /** The same in seconds at `rate` messages/s; null without --rate. */
  readonly atRate: { readonly messagesPerSecond: number; readonly stepEverySeconds: number; readonly windowSeconds: number; readonly freshnessSeconds: number } | null;
  readonly quietStepIntervalMs: number;
  readonly advice: readonly string[];
}

export function scheduleAdvice(config: Config, rate?: number): ScheduleAdvice | null {
  const p = config.privacy;
  if (!p) return null;
  const S = p.stepEveryRecords;
  const d = config.training.averageDecay;
  const expectedBatch = p.sampleRate * p.window * S;
  const freshnessMessages = Math.round(S / p.sampleRate + (d > 0 ? S / (1 - d) : 0));
  const atRate =
    rate !== undefined && rate > 0
      ? { messagesPerSecond: rate, stepEverySeconds: S / rate, windowSeconds: (p.window * S) / rate, freshnessSeconds: freshnessMessages / rate }
      : null;
  const advice: string[] = [];
  if (expectedBatch < 200) {
    advice.push(`each step averages only q·W·S = ${expectedBatch.toFixed(0)} expected records under the same noise: raise STEP_EVERY_RECORDS or SAMPLE_RATE (the utility benchmark lost accuracy below ~300)`);
  }
  if (atRate && atRate.freshnessSeconds > 3600) {
    advice.push(`at ${rate} messages/s a new pattern takes about ${(atRate.freshnessSeconds / 3600).toFixed(1)} h to show: lower STEP_EVERY_RECORDS (fresher, noisier steps) if that is too slow`);
  }
  if (atRate && atRate.stepEverySeconds < 0.05) {
    advice.push(`at ${rate} messages/s a step is due every ${(1000 * atRate.stepEverySeconds).toFixed(0)} ms: check \`npm run bench\` says this machine trains that fast, or raise STEP_EVERY_RECORDS`);
  }
  if (config.checkpoint.quietStepIntervalMs === 0) {
    advice.push('QUIET_STEP_INTERVAL_MS=0: when the stream pauses, the newest records keep unfinished windows and the served model lags until traffic resumes');
  }
  return { stepEveryMessages: S, windowMessages: p.window * S, expectedBatch, freshnessMessages, atRate, quietStepIntervalMs: config.checkpoint.quietStepIntervalMs, advice };
}

const secs = (s: number) => (s < 120 ? `${s.toPrecision(3)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

export function formatScheduleAdvice(a: ScheduleAdvice): string[] {
  const lines = [
    `schedule: a step every S = ${a.stepEveryMessages} messages; a record's window spans W·S = ${a.windowMessages} messages; ` +
      `each step averages q·W·S = ${a.expectedBatch.toFixed(0)} expected records; a new pattern shows in the served model after about ` +
      `S/q + S/(1 − d) = ${a.freshnessMessages} messages`,
  ];
  if (a.atRate) {
    lines.push(
      `  at ${a.atRate.messagesPerSecond} messages/s: a step every ${secs(a.atRate.stepEverySeconds)}, a window lasts ${secs(a.atRate.windowSeconds)}, a new pattern shows after ~${secs(a.atRate.freshnessSeconds)}`,
    );
  } else {
    lines.push('  add --rate <messages/s> to see these in time at your traffic');
  }
  lines.push(
    `  rule of thumb: smaller STEP_EVERY_RECORDS is fresher, larger averages more records per step under the same noise (keep q·W·S in the hundreds); ` +
      (a.quietStepIntervalMs > 0 ? `when the stream pauses, a quiet step every ${a.quietStepIntervalMs} ms finishes the windows` : 'quiet steps are off'),
  );
  for (const x of a.advice) lines.push(`advice: ${x}`);
  return lines;
}
