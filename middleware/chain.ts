/**
 * Express-style composition: each stage gets the context and a `next` that runs the rest of the chain.
 * A screen stage that rejects simply does not call `next`; a gate stage can run `next` and undo what it did.
 * The same composer builds the per-record chain (schema → release → screens → admit, src/pipeline.ts) and the
 * per-step chain (average → gate → guard → privatize → update, written once in train/step-order.ts).
 */
import { TayguardError } from '../core/errors';

export type Next = () => Promise<void>;

export interface Stage<C> {
  readonly name: string;
  handle(ctx: C, next: Next): Promise<void> | void;
}

export function compose<C>(stages: readonly Stage<C>[]): (ctx: C) => Promise<void> {
  return function run(ctx: C): Promise<void> {
    let last = -1;
    const dispatch = async (i: number): Promise<void> => {
      if (i <= last) throw new TayguardError('INTERNAL', `stage "${stages[i - 1]?.name}" called next() twice: a stage runs the rest of the chain at most once`);
      last = i;
      const stage = stages[i];
      if (stage === undefined) return;
      await stage.handle(ctx, () => dispatch(i + 1));
    };
    return dispatch(0);
  };
}
