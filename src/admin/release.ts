/**
 * Releasing a quarantined record: it goes back onto `<prefix>.records` with a signed header, and the pipeline
 * lets a record whose signature verifies skip the poisoning screens (never the schema stage). The signature is
 * an HMAC over the exact bytes, keyed by ADMIN_TOKEN, so a producer cannot forge a release by setting the header.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export const RELEASE_HEADER = 'tayguard-release';

export interface ReleaseSigner {
  sign(value: Buffer): string;
  verify(value: Buffer | null, header: string | undefined): boolean;
}

export function releaseSigner(secret: string): ReleaseSigner {
  const mac = (id: string, value: Buffer) => createHmac('sha256', secret).update(id).update('\n').update(value).digest('hex');
  return {
    sign(value) {
      const id = randomUUID();
      return `${id}:${mac(id, value)}`;
    },
    verify(value, header) {
      if (!header || !value) return false;
      const at = header.indexOf(':');
      if (at <= 0) return false;
      const expected = Buffer.from(mac(header.slice(0, at), value), 'hex');
      const given = Buffer.from(header.slice(at + 1), 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/** Constant-time bearer token check (the token's length is not secret; its bytes are). */
export function tokenMatches(expected: string, authorization: string | undefined): boolean {
  const m = /^Bearer (.+)$/.exec(authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
