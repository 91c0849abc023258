import { loadConfig } from '../../src/config';
import { hasCode } from '../../src/errors';

const base = { KAFKA_BROKERS: 'localhost:9092' };

describe('configuration', () => {
  it('applies documented defaults', () => {
    const c = loadConfig(base);
    expect(c.topics).toEqual({ records: 'tayguard.records', quarantine: 'tayguard.quarantine' });
    expect(c.kafka.groupId).toBe('tayguard');
    expect(c.http.port).toBe(8080);
    expect(c.model).toMatchObject({ kind: 'text', inputDim: 16384, numClasses: 2 });
    expect(c.checkpoint.dir).toBe('.tayguard/checkpoints');
    expect(c.checkpoint.modelDir).toBe('.tayguard/checkpoints/models');
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

  it('checks relationships between settings', () => {
    expect(() => loadConfig({ ...base, BATCH_SIZE: '500', CHECKPOINT_EVERY_RECORDS: '100' })).toThrow(/CHECKPOINT_EVERY_RECORDS \(100\) must be at least BATCH_SIZE \(500\)/);
  });
});
