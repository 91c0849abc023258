import { loadConfig } from '../../src/config';
import { hasCode } from '../../core/errors';

const base = { KAFKA_BROKERS: 'localhost:9092' };

describe('configuration', () => {
  it('applies documented defaults', () => {
    const c = loadConfig(base);
    expect(c.topics).toEqual({ records: 'tayguard.records', quarantine: 'tayguard.quarantine', models: 'tayguard.models' });
    expect(c.kafka.groupId).toBe('tayguard');
    expect(c.http.port).toBe(8080);
    expect(c.model).toMatchObject({ kind: 'text', inputDim: 4096, numClasses: 2 });
    // Per model kind, chosen by bench:utility --tune (docs/privacy.md): text 10 under DP with a step every 32
    // messages, 15 without DP; dense 5 / 0.5 with S = BATCH_SIZE.
    expect(c.training.learningRate).toBe(10);
    expect(c.privacy?.stepEveryRecords).toBe(32);
    expect(loadConfig({ ...base, DP_ENABLED: 'false' }).training.learningRate).toBe(15);
    expect(loadConfig({ KAFKA_BROKERS: 'b:1', MODEL: 'dense', FEATURE_DIM: '8' }).privacy?.stepEveryRecords).toBe(64);
    expect(loadConfig({ ...base, HIDDEN_UNITS: '16' }).privacy?.stepEveryRecords).toBe(64);
    expect(loadConfig({ ...base, STEP_EVERY_RECORDS: '100' }).privacy?.stepEveryRecords).toBe(100);
    expect(loadConfig({ KAFKA_BROKERS: 'b:1', MODEL: 'dense', FEATURE_DIM: '8' }).training.learningRate).toBe(5);
    expect(loadConfig({ KAFKA_BROKERS: 'b:1', MODEL: 'dense', FEATURE_DIM: '8', DP_ENABLED: 'false' }).training.learningRate).toBe(0.5);
    expect(c.checkpoint.dir).toBe('.tayguard/checkpoints');
    expect(c.checkpoint.modelDir).toBe('.tayguard/checkpoints/models');
  });

  it('serves a moving average by default; AVERAGE_DECAY=0 serves the iterate; 1 or more is refused with the reason', () => {
    expect(loadConfig(base).training.averageDecay).toBe(0.95);
    expect(loadConfig({ ...base, AVERAGE_DECAY: '0' }).training.averageDecay).toBe(0);
    for (const bad of ['1', '1.5', '-0.1', 'often']) {
      const e = (() => {
        try {
          loadConfig({ ...base, AVERAGE_DECAY: bad });
        } catch (err) {
          return err as Error;
        }
        return undefined;
      })();
      expect(e && hasCode(e, 'CONFIG_INVALID')).toBe(true);
      expect(e?.message).toMatch(/AVERAGE_DECAY/);
    }
    expect(loadConfig({ ...base, CANARY_FILE: '/x.jsonl' }).gate).toMatchObject({ rollbackNoiseZ: 5, judgeEverySteps: 8, rollbackAfter: 2 });
    expect(loadConfig({ ...base, CANARY_FILE: '/x.jsonl', ROLLBACK_AFTER_CHECKPOINTS: '3' }).gate?.rollbackAfter).toBe(3);
    expect(loadConfig({ ...base, CANARY_FILE: '/x.jsonl', ROLLBACK_AFTER_JUDGEMENTS: '4' }).gate?.rollbackAfter).toBe(4);
    expect(() => loadConfig({ ...base, ROLLBACK_AFTER_JUDGEMENTS: '4', ROLLBACK_AFTER_CHECKPOINTS: '3' })).toThrow(/old name of ROLLBACK_AFTER_JUDGEMENTS/);
  });

  it('reads overrides and derives topic names from the prefix', () => {
    const c = loadConfig({ ...base, TOPIC_PREFIX: 'chat', MODEL: 'dense', FEATURE_DIM: '784', NUM_CLASSES: '10', PORT: '0' });
    expect(c.topics.records).toBe('chat.records');
    expect(c.model).toMatchObject({ kind: 'dense', inputDim: 784, numClasses: 10 });
    expect(c.http.port).toBe(0);
  });

  it('fails fast with one line per problem', () => {
    let message = '';
    try {
      loadConfig({ KAFKA_BROKERS: 'nohostport', PORT: 'eighty', MODEL: 'cnn', NUM_CLASSES: '1' });
    } catch (e) {
      expect(hasCode(e, 'CONFIG_INVALID')).toBe(true);
      message = (e as Error).message;
    }
    const lines = message.split('\n').slice(1).map((l) => l.trim());
    expect(lines).toHaveLength(4);
    expect(lines.map((l) => l.split(':')[0])).toEqual(expect.arrayContaining(['KAFKA_BROKERS.0', 'PORT', 'MODEL', 'NUM_CLASSES']));
  });

  it('requires brokers and, for dense models, the feature length', () => {
    expect(() => loadConfig({})).toThrow(/KAFKA_BROKERS: required/);
    expect(() => loadConfig({ ...base, MODEL: 'dense' })).toThrow(/FEATURE_DIM: required when MODEL=dense/);
  });

  it('is private by default, and refuses privacy settings under which nothing could ever be trained', () => {
    expect(loadConfig(base).privacy).toMatchObject({ epsilonLimit: 8, delta: 1e-6, unit: 'record', noiseMultiplier: 2.24, sampleRate: 0.2, window: 50 });
    expect(loadConfig({ ...base, DP_ENABLED: 'false' }).privacy).toBeNull();
    expect(() => loadConfig({ ...base, EPSILON_LIMIT: '1' })).toThrow(/EPSILON_LIMIT \(1\) is below the ε of one record's window \(3\.42\d.*raise NOISE_MULTIPLIER \(npx tayguard noise --target-epsilon 1/);
    // source level: a source with k records in the window joins a step with probability 1-(1-q)^k
    expect(() => loadConfig({ ...base, PRIVACY_UNIT: 'source' })).toThrow(/one source's window \(11\.64/);
    expect(loadConfig({ ...base, PRIVACY_UNIT: 'source', NOISE_MULTIPLIER: '4' }).privacy?.unit).toBe('source');
  });

  it('bounds each source per DP step by default (SOURCE_CLIP=on), off with SOURCE_CLIP=off, and refuses other values', () => {
    expect(loadConfig(base).privacy?.sourceClip).toBe(true);
    expect(loadConfig({ ...base, SOURCE_CLIP: 'off' }).privacy?.sourceClip).toBe(false);
    expect(() => loadConfig({ ...base, SOURCE_CLIP: 'yes' })).toThrow(/SOURCE_CLIP/);
  });

  it('weighs records by account age by default (30 days to full weight, w_min 0.1), off with INFLUENCE_MIN_WEIGHT=1, and refuses weights outside [0, 1]', () => {
    expect(loadConfig(base).privacy?.influence).toEqual({ matureMs: 30 * 86_400_000, minWeight: 0.1 });
    expect(loadConfig({ ...base, INFLUENCE_MATURE_DAYS: '7', INFLUENCE_MIN_WEIGHT: '0.25' }).privacy?.influence).toEqual({ matureMs: 7 * 86_400_000, minWeight: 0.25 });
    expect(loadConfig({ ...base, INFLUENCE_MIN_WEIGHT: '1' }).privacy?.influence).toBeNull();
    expect(() => loadConfig({ ...base, INFLUENCE_MIN_WEIGHT: '1.5' })).toThrow(/INFLUENCE_MIN_WEIGHT/);
    expect(() => loadConfig({ ...base, INFLUENCE_MIN_WEIGHT: '-0.1' })).toThrow(/INFLUENCE_MIN_WEIGHT/);
    expect(() => loadConfig({ ...base, INFLUENCE_MATURE_DAYS: '0' })).toThrow(/INFLUENCE_MATURE_DAYS/);
  });

  it('selects poisoning screens by name, and none with SCREENS=none', () => {
    expect(loadConfig(base).screens.enabled).toEqual(['echo', 'toxicity']);
    expect(loadConfig({ ...base, SCREENS: 'none' }).screens.enabled).toEqual([]);
    expect(loadConfig({ ...base, SCREENS: 'campaign, rate-caps', SCREENS_CONFIG: '{"campaign":{"minSources":3}}' }).screens).toEqual({
      enabled: ['campaign', 'rate-caps'],
      settings: { campaign: { minSources: 3 } },
      abuseLabels: [1],
    });
    expect(() => loadConfig({ ...base, SCREENS: 'echo,vibes' })).toThrow(/SCREENS.1: each screen must be one of/);
    expect(() => loadConfig({ ...base, SCREENS_CONFIG: '{oops' })).toThrow(/SCREENS_CONFIG: must be a JSON object/);
  });

  it('checks relationships between settings', () => {
    expect(() => loadConfig({ ...base, BATCH_SIZE: '500', CHECKPOINT_EVERY_RECORDS: '100' })).toThrow(/CHECKPOINT_EVERY_RECORDS \(100\) must be at least BATCH_SIZE \(500\)/);
  });
});
