/** The step order is written once (train/step-order.ts) and is the order a DP step really runs in. */
import { initTf } from '../../core/tf';
import { buildModel, featurizerFor } from '../../middleware/build';
import { TfjsLearner } from '../../middleware/learner';
import { createMetrics } from '../../src/metrics';
import { DpTrainer, type DpOptions } from '../../train/dp';
import { PlainTrainer } from '../../train/plain';
import type { StepContext, StepStage } from '../../train/step';
import { STEP_ORDER, aroundTheUpdate, stepChain } from '../../train/step-order';

beforeAll(async () => {
  await initTf();
});

const learner = () => new TfjsLearner(buildModel({ inputDim: 32, numClasses: 2, hiddenUnits: 0, seed: 1 }), featurizerFor('text', 32), { learningRate: 1 });
const dp: DpOptions = { sampleRate: 1, noiseMultiplier: 1, clipNorm: 1, window: 2, stepEveryRecords: 2, epsilonLimit: 1000, delta: 1e-5, unit: 'record', maxRecordsPerSource: 2, accountant: 'rdp', seed: 'order' };

/** A stage named like a real one that records when it is entered and what the rest of the step did. */
function probe(name: string, log: string[], after: { gradients?: boolean; applied?: boolean }[]): StepStage {
  return {
    name,
    handle: async (ctx: StepContext, next) => {
      log.push(name);
      await next();
      after.push({ gradients: ctx.gradients !== undefined, applied: ctx.applied });
    },
  };
}

describe('step order', () => {
  it('is average → gate → guard → privatize → update, in one list', () => {
    const s = (name: string): StepStage => ({ name, handle: (_c, next) => next() });
    const chain = stepChain(aroundTheUpdate({ guard: s('numeric-guard'), gate: s('gate'), average: s('average') }), s('privatize'), s('update'));
    expect(chain.map((x) => x.name)).toEqual([...STEP_ORDER]);
    expect(stepChain(aroundTheUpdate({ guard: s('numeric-guard') }), undefined, s('update')).map((x) => x.name)).toEqual(['numeric-guard', 'update']);
  });

  it('runs a DP step in that order: the stages around the update see privatize and update done inside them', async () => {
    const log: string[] = [];
    const after: { gradients?: boolean; applied?: boolean }[] = [];
    const stages = aroundTheUpdate({ average: probe('average', log, after), gate: probe('gate', log, after), guard: probe('numeric-guard', log, after) });
    const trainer = new DpTrainer(learner(), createMetrics(), dp, undefined, stages);
    await trainer.admit({ id: 'a', source: 's1', label: 1, text: 'win a prize' });
    await trainer.admit({ id: 'b', source: 's2', label: 0, text: 'lunch at noon' });
    expect(log).toEqual(['average', 'gate', 'numeric-guard']);
    // Innermost first on the way out; privatize had set the gradients and update had applied them.
    expect(after).toEqual([{ gradients: true, applied: true }, { gradients: true, applied: true }, { gradients: true, applied: true }]);
  });

  it('runs a plain step without privatize: the update takes the SGD step itself', async () => {
    const log: string[] = [];
    const after: { gradients?: boolean; applied?: boolean }[] = [];
    const trainer = new PlainTrainer(learner(), createMetrics(), 2, aroundTheUpdate({ guard: probe('numeric-guard', log, after) }));
    await trainer.admit({ id: 'a', source: 's1', label: 1, text: 'win a prize' });
    await trainer.admit({ id: 'b', source: 's2', label: 0, text: 'lunch at noon' });
    expect(log).toEqual(['numeric-guard']);
    expect(after).toEqual([{ gradients: false, applied: true }]);
  });
});
