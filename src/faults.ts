/**
 * Fault injection for crash tests: `TAYGUARD_FAULT=<point>:<n>` kills the process with SIGKILL the n-th time
 * execution reaches <point>. This is how the tests crash the sidecar at the worst moments (after a checkpoint
 * is durable but before its offsets are committed, or before the checkpoint is written) instead of hoping a
 * timer lands there. Costs one Map lookup per point when unset.
 */
export type FaultPoint = 'before-checkpoint-write' | 'after-checkpoint-write' | 'after-commit';

const spec = /^([a-z-]+):(\d+)$/.exec(process.env.TAYGUARD_FAULT ?? '');
const hits = new Map<string, number>();

export function faultPoint(point: FaultPoint): void {
  if (!spec || spec[1] !== point) return;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  if (n === Number(spec[2])) {
    process.stderr.write(`tayguard: TAYGUARD_FAULT: crashing at ${point} #${n}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
