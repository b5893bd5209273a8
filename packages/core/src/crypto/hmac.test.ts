import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Hmac256 } from './hmac.js';

describe('Hmac256', () => {
  it('is HMAC-SHA256 for any key and message (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 130 }), fc.uint8Array({ maxLength: 3000 }), (key, data) => {
        using h = new Hmac256(key);
        const expected = createHmac('sha256', key).update(data).digest();
        expect(h.digest(data).equals(expected)).toBe(true);
        expect(h.digest(data).equals(expected)).toBe(true); // reusable
      }),
      { numRuns: 100 },
    );
  });

  it('matches RFC 4231 test case 2', () => {
    using h = new Hmac256(Buffer.from('Jefe'));
    expect(h.digest(Buffer.from('what do ya want for nothing?')).toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});
