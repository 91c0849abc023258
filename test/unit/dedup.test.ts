import { Deduplicator } from '../../src/dedup';

describe('deduplicator', () => {
  it('recognises redelivered offsets per partition, and survives a round trip', () => {
    const d = new Deduplicator(10);
    d.markOffset('t', 0, '41');
    d.markOffset('t', 1, '7');
    const back = Deduplicator.fromJSON(JSON.parse(JSON.stringify(d.toJSON())), 10);
    expect(back.isRedelivery('t', 0, '41')).toBe(true);
    expect(back.isRedelivery('t', 0, '42')).toBe(false);
    expect(back.isRedelivery('t', 1, '8')).toBe(false);
    expect(back.isRedelivery('t', 2, '0')).toBe(false);
    expect(back.nextOffsets('t')).toEqual([
      { topic: 't', partition: 0, offset: '42' },
      { topic: 't', partition: 1, offset: '8' },
    ]);
  });

  it('handles offsets beyond 2^53', () => {
    const d = new Deduplicator(1);
    d.markOffset('t', 0, '9007199254740993');
    expect(d.isRedelivery('t', 0, '9007199254740993')).toBe(true);
    expect(d.isRedelivery('t', 0, '9007199254740994')).toBe(false);
  });

  it('remembers a bounded number of ids, forgetting the oldest first', () => {
    const d = new Deduplicator(2);
    expect(d.rememberId('a')).toBe(true);
    expect(d.rememberId('a')).toBe(false);
    d.rememberId('b');
    d.rememberId('c');
    expect(d.toJSON().ids).toEqual(['b', 'c']);
    expect(d.rememberId('a')).toBe(true);
  });
});
