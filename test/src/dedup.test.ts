import { Deduplicator, recordIdentity } from '../../src/dedup';

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

  it('remembers a bounded number of record identities, forgetting the oldest first, across a round trip', () => {
    const d = new Deduplicator(2);
    expect(d.rememberId('s', 'a')).toBe(true);
    expect(d.rememberId('s', 'a')).toBe(false);
    d.rememberId('s', 'b');
    d.rememberId('s', 'c');
    const back = Deduplicator.fromJSON(JSON.parse(JSON.stringify(d.toJSON())), 2);
    expect(back.rememberId('s', 'c')).toBe(false);
    expect(back.rememberId('s', 'a')).toBe(true); // forgotten: beyond the horizon it is a new record
  });

  it('scopes ids per source: another account cannot take an honest record\'s id first', () => {
    const d = new Deduplicator(10);
    expect(d.rememberId('mallory', 'r-123')).toBe(true);
    expect(d.rememberId('alice', 'r-123')).toBe(true);
    expect(d.rememberId('alice', 'r-123')).toBe(false);
    // The pair is hashed unambiguously: moving characters between source and id is another record.
    expect(recordIdentity('ab', 'c')).not.toBe(recordIdentity('a', 'bc'));
  });

  it('reads the ids of a version-1 checkpoint', () => {
    const d = Deduplicator.fromJSON({ watermarks: {}, ids: ['x', 'y'] }, 10);
    expect(d.toJSON().idHashes).toBe(Buffer.from(Float64Array.from([recordIdentity('', 'x'), recordIdentity('', 'y')]).buffer).toString('base64'));
  });
});

describe('the dedup horizon is counted in messages', () => {
  it('a record\'s presence does not push another record\'s id out of the horizon (review B2)', () => {
    const run = (withX: boolean) => {
      const d = new Deduplicator(5);
      d.countMessage();
      expect(d.rememberId('attacker', 'm0')).toBe(true);
      for (let i = 1; i < 5; i++) {
        d.countMessage();
        // message 2 is x: a valid record (D) or an empty message (D′) that never reaches dedup
        if (i === 2 && !withX) continue;
        d.rememberId(`s${i}`, `m${i}`);
      }
      d.countMessage();
      return d.rememberId('attacker', 'm0'); // the attacker re-sends their own record
    };
    expect(run(true)).toBe(run(false));
  });

  it('forgets an id after DEDUP_IDS_KEPT messages and keeps that clock across a checkpoint', () => {
    const d = new Deduplicator(3);
    d.countMessage();
    d.rememberId('s', 'a');
    d.countMessage();
    const back = Deduplicator.fromJSON(JSON.parse(JSON.stringify(d.toJSON())), 3);
    expect(back.rememberId('s', 'a')).toBe(false); // 1 message later: still known
    back.countMessage();
    back.countMessage();
    expect(back.rememberId('s', 'a')).toBe(true); // 3 messages later: beyond the horizon
  });
});
