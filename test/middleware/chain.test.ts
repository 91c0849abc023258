import { compose, type Stage } from '../../middleware/chain';

describe('stage chain', () => {
  it('runs stages in order, each around the rest', async () => {
    const log: string[] = [];
    const stage = (name: string): Stage<string[]> => ({
      name,
      async handle(ctx, next) {
        ctx.push(`${name}:in`);
        await next();
        ctx.push(`${name}:out`);
      },
    });
    await compose([stage('screen'), stage('privatize'), stage('update')])(log);
    expect(log).toEqual(['screen:in', 'privatize:in', 'update:in', 'update:out', 'privatize:out', 'screen:out']);
  });

  it('stops when a stage does not call next (a rejecting screen)', async () => {
    const seen: string[] = [];
    await compose<string[]>([
      { name: 'reject', handle: (ctx) => void ctx.push('reject') },
      { name: 'update', handle: (ctx) => void ctx.push('update') },
    ])(seen);
    expect(seen).toEqual(['reject']);
  });

  it('refuses a stage that calls next twice', async () => {
    const run = compose<object>([{ name: 'twice', handle: async (_c, next) => { await next(); await next(); } }]);
    await expect(run({})).rejects.toThrow('called next() twice');
  });

  it('propagates a stage error to the caller', async () => {
    const run = compose<object>([{ name: 'boom', handle: () => { throw new Error('boom'); } }]);
    await expect(run({})).rejects.toThrow('boom');
  });
});
