/**
 * `tayguard checkpoint verify` and `tayguard checkpoint repair` (src/checkpoint/repair.ts). They read the same
 * CHECKPOINT_DIR and MODEL_DIR as the sidecar (flags override), need no broker and no KAFKA_BROKERS.
 *
 *   verify: exit 0 when start-up would resume safely, 1 with the problems and the next step otherwise.
 *   repair: exit 0 after a repair (or when there is nothing to repair), 1 when no checkpoint is intact.
 */
import type { Command } from 'commander';
import { inspectCheckpoints, repairCheckpoints } from '../checkpoint/repair';

interface DirOptions {
  dir?: string;
  modelDir?: string;
  json?: boolean;
}

function dirs(opts: DirOptions): { dir: string; modelDir: string } {
  const dir = opts.dir ?? (process.env.CHECKPOINT_DIR || '.tayguard/checkpoints');
  return { dir, modelDir: opts.modelDir ?? (process.env.MODEL_DIR || `${dir.replace(/\/+$/, '')}/models`) };
}

const eps = (e: number | null | undefined) => (e === null || e === undefined ? 'no DP' : `ε ${e.toFixed(4)}`);

async function verify(opts: DirOptions): Promise<void> {
  const { dir, modelDir } = dirs(opts);
  const r = await inspectCheckpoints(dir, modelDir);
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    if (r.checkpoints.length === 0) process.stdout.write(`no checkpoints in ${dir}: a start-up begins a new model\n`);
    for (const c of r.checkpoints) {
      process.stdout.write(c.ok ? `ok       ${c.file}  seq ${c.seq}, model v${c.modelVersion}, ${eps(c.epsilon)}, ${c.createdAt}\n` : `DAMAGED  ${c.file}: ${c.error}\n`);
    }
    process.stdout.write(`published versions in ${modelDir}: ${r.published.length}${r.highestPublishedEpsilon !== null ? `, highest ε ${r.highestPublishedEpsilon.toFixed(4)}` : ''}\n`);
    for (const p of r.problems) process.stdout.write(`problem: ${p}\n`);
    process.stdout.write(r.healthy ? 'healthy: the sidecar will resume from the newest checkpoint\n' : 'not healthy: run `npx tayguard checkpoint repair` (same CHECKPOINT_DIR/MODEL_DIR)\n');
  }
  if (!r.healthy) process.exitCode = 1;
}

async function repair(opts: DirOptions): Promise<void> {
  const { dir, modelDir } = dirs(opts);
  const r = await repairCheckpoints(dir, modelDir);
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    for (const f of r.setAside) process.stdout.write(`set aside ${f}\n`);
    if (r.written) process.stdout.write(`wrote ${r.written.file}: ${eps(r.written.epsilonBefore)} → ${eps(r.written.epsilonAfter)}\n`);
    process.stdout.write(`${r.note}\n`);
  }
}

export function registerCheckpointCommands(program: Command, fail: (e: unknown) => never): void {
  const cmd = program.command('checkpoint').description('check or repair CHECKPOINT_DIR without starting the sidecar');
  const common = (c: Command) =>
    c
      .option('--dir <path>', 'checkpoint directory (default: CHECKPOINT_DIR or .tayguard/checkpoints)')
      .option('--model-dir <path>', 'published model versions (default: MODEL_DIR or <dir>/models)')
      .option('--json', 'print JSON');
  common(cmd.command('verify').description('read every checkpoint back, compare its ε with the published versions; exit 1 when start-up would stop')).action((o: DirOptions) => verify(o).catch(fail));
  common(cmd.command('repair').description('set damaged checkpoints aside and resume from the newest intact one, charging the lost steps; ε never below a published figure')).action((o: DirOptions) => repair(o).catch(fail));
}
