/**
 * AVERAGE_DECAY against a real broker: the sidecar serves and publishes the moving average of the weights, not
 * the last iterate; the average (and the update gate's noise measurements) survive a restart exactly; turned off over the same checkpoint, the sidecar keeps
 * serving the version that checkpoint published until it trains again.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTf } from '../../core/tf';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createSidecar, type Sidecar } from '../../src/sidecar';
import { loadLayersModelFromDir } from '../../middleware/files';
import { splitSpamCorpus } from '../../src/data/spam';
import { encodeBatch, type Payload } from '../../middleware/featurize';
import { tf } from '../../core/tf';
import { kafkaFor, produce, readAll, startLocalBroker, type LocalBroker } from '../helpers/kafka';

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('serving the averaged weights', () => {
  let broker: LocalBroker;
  beforeAll(async () => {
    await initTf();
    broker = await startLocalBroker();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('serves and publishes the average, keeps it and the gate state across a restart, and keeps the checkpoint version when switched off', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-avg-'));
    const prefix = `avg-${process.pid}`;
    const canaryFile = path.join(dir, 'canaries.jsonl');
    writeFileSync(canaryFile, splitSpamCorpus().test.slice(100, 160).map((m, i) => JSON.stringify({ id: `c${i}`, source: 'trusted', label: m.label, text: m.text })).join('\n'));
    const env = {
      KAFKA_BROKERS: broker.bootstrap,
      TOPIC_PREFIX: prefix,
      GROUP_ID: prefix,
      CHECKPOINT_DIR: path.join(dir, 'ckpt'),
      PORT: '0',
      HOST: '127.0.0.1',
      DP_ENABLED: 'false',
      SCREENS: 'none',
      SEED: '5',
      CHECKPOINT_INTERVAL_MS: '3600000',
      AVERAGE_DECAY: '0.9',
      CANARY_FILE: canaryFile,
      ROLLBACK_EVERY_STEPS: '4',
    };
    const mails = splitSpamCorpus().train.slice(0, 640);
    await produce(
      kafkaFor(broker),
      `${prefix}.records`,
      mails.map((m, i) => ({ key: 'k', value: JSON.stringify({ id: `m${i}`, source: `s${i % 40}`, label: m.label, text: m.text }) })),
    );
    const probe: Payload[] = splitSpamCorpus().test.slice(0, 50).map((m) => ({ text: m.text }));

    const first = await createSidecar(loadConfig(env), createLogger('silent'));
    await first.start();
    while (first.status().counts.trained < mails.length) await sleep(20);
    await first.checkpoint();
    const served = first.predict(probe).probabilities;
    const iterate = first.learner.predict(probe);
    expect(first.average?.updates).toBe(mails.length / 64 - first.gate!.rejected);
    const gateState = first.gate!.toJSON();
    expect(gateState.lossChanges).toHaveLength(10);
    expect(gateState.judgedScores).toHaveLength(2);
    // What is served is not the last iterate …
    expect(Math.max(...served.map((p, i) => Math.abs(p[1] - iterate[i][1])))).toBeGreaterThan(1e-3);
    // … and the published version is exactly what is served.
    const modelDir = first.config.checkpoint.modelDir;
    const latest = readFileSync(path.join(modelDir, 'LATEST'), 'utf8').trim();
    const published = await loadLayersModelFromDir(path.join(modelDir, latest));
    const x = tf.tensor2d(encodeBatch(first.learner.featurizer, probe), [probe.length, first.learner.featurizer.dim]);
    const fromDisk = (published.predict(x) as tf.Tensor2D).arraySync();
    served.forEach((p, i) => expect(fromDisk[i][1]).toBeCloseTo(p[1], 5));
    await first.stop();
    // Each version was announced on <prefix>.models with the sha256 of the weights in its integer directory.
    const announced = (await readAll(kafkaFor(broker), `${prefix}.models`)).map((m) => JSON.parse(m.value));
    expect(announced.map((a) => a.version)).toContain(first.status().modelVersion);
    for (const a of announced.filter((x) => existsSync(path.join(modelDir, String(x.version))))) {
      expect(a.path).toBe(path.join(modelDir, String(a.version)));
      expect(a.weightsSha256).toBe(createHash('sha256').update(readFileSync(path.join(modelDir, String(a.version), 'weights.bin'))).digest('hex'));
    }

    const again = await createSidecar(loadConfig(env), createLogger('silent'));
    expect(again.predict(probe).probabilities).toEqual(served);
    expect(again.average?.updates).toBe(first.average?.updates);
    expect(again.gate!.toJSON()).toEqual(gateState); // the gate's noise measurements came back with the checkpoint

    // Switched off over the same checkpoint: the version it names (the average) is still what is served; the learner
    // continues from the trained weights, and the next checkpoint that trains publishes them.
    const off = await createSidecar(loadConfig({ ...env, AVERAGE_DECAY: '0' }), createLogger('silent'));
    expect(off.average).toBeUndefined();
    expect(off.predict(probe)).toEqual({ modelVersion: first.status().modelVersion, probabilities: served });
    off.learner.predict(probe).forEach((p, i) => expect(p[1]).toBeCloseTo(iterate[i][1], 6));
    x.dispose();
  });
});
