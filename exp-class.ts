import { initTf } from './core/tf';
import { buildModel, featurizerFor } from './middleware/build';
import { TfjsLearner } from './middleware/learner';
import { createMetrics } from './src/metrics';
import { UpdateGate } from './train/gate';
import { dpWeightNoise } from './train/gate-noise';
import { WeightAverage } from './train/average';
import { DpTrainer } from './train/dp';
import { SourceRegistry } from './filters/trust';
import { DEFAULT_TRUST } from './filters/config';
import { splitSpamCorpus, shuffled } from './src/data/spam';
(async () => {
  await initTf();
  const sigma = 1, lr = 5, S = 32, q = 0.2, W = 10, dim = 512, every = 4;
  const { train, test } = splitSpamCorpus();
  const mails = shuffled(train, 'g');
  const spam = mails.filter((m) => m.label === 1);
  const learner = new TfjsLearner(buildModel({ inputDim: dim, numClasses: 2, hiddenUnits: 0, seed: 5 }), featurizerFor('text', dim), { learningRate: lr });
  const canary = shuffled(test, 'c').slice(0, 200);
  console.log('canary spam', canary.filter((m) => m.label === 1).length);
  const { x, y } = learner.batch(canary, canary.map((m) => m.label));
  const avg = new WeightAverage(learner, 0.9);
  const noise = dpWeightNoise({ learningRate: lr, noiseMultiplier: sigma, clipNorm: 1, expectedBatchSize: q * W * S });
  const gate = new UpdateGate(learner, { x, y, size: 200 }, new SourceRegistry(DEFAULT_TRUST), { lossTolerance: 100, accuracyTolerance: 1, rollbackDrop: Number(process.argv[2] ?? 0.05), rollbackAfter: 2, rollbackNoiseZ: 5, dpWeightNoise: noise, judgeEverySteps: every }, { onRollback: (a) => console.log('ROLLBACK', a.message) }, avg);
  const dp = { sampleRate: q, noiseMultiplier: sigma, clipNorm: 1, window: W, stepEveryRecords: S, epsilonLimit: 1e6, delta: 1e-5, unit: 'record' as const, maxRecordsPerSource: 4, accountant: 'rdp' as const, seed: 'x' };
  const trainer = new DpTrainer(learner, createMetrics(), dp, undefined, [avg.stage(), gate.stage()]);
  for (let i = 0; i < 1500; i++) { const m = mails[i]; await trainer.admit({ id: m.id, source: `u${i % 50}`, label: m.label, text: m.text }); }
  console.log('margins', JSON.stringify(gate.rollbackMargins()), gate.servedScore);
  let s = 0;
  for (let r = 0; r < 12; r++) {
    for (let i = 0; i < 128; i++) { const poison = i % 4 === 0; const m = poison ? spam[s++ % spam.length] : mails[1500 + r * 128 + i]; await trainer.admit({ id: `${r}-${i}`, source: poison ? `p${i % 20}` : `u${i % 50}`, label: poison ? 0 : m.label, text: m.text }); }
    console.log(r, JSON.stringify(gate.servedScore), JSON.stringify(gate.rollbackMargins()), 'rb', gate.rollbackCount);
  }
})();
