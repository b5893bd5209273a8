import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TEST_SCRYPT } from './builtin.test-helper.js';
import { hashPassword, parsePasswordHash, verifyPassword } from './password-hash.js';

describe('password hashes', () => {
  it('records its parameters and verifies only the same password', async () => {
    const h = await hashPassword('pässwörd', TEST_SCRYPT);
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('pässwörd', h)).toBe(true);
    // NFC: the same password typed as decomposed characters.
    expect(await verifyPassword('pa\u0308sswo\u0308rd', h)).toBe(true);
    expect(await verifyPassword('passwörd', h)).toBe(false);
    expect(await hashPassword('pässwörd', TEST_SCRYPT)).not.toBe(h); // a new salt each time
  });

  it('the default parameters are recorded too', async () => {
    expect(parsePasswordHash(await hashPassword('x')).params).toEqual({ N: 32768, r: 8, p: 3 });
  });

  it('any password round-trips; any other is refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), async (a, b) => {
        const h = await hashPassword(a, { N: 16, r: 1, p: 1 });
        expect(await verifyPassword(a, h)).toBe(true);
        if (a.normalize('NFC') !== b.normalize('NFC')) expect(await verifyPassword(b, h)).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses malformed hashes and parameters that would cost too much', async () => {
    const good = await hashPassword('x', TEST_SCRYPT);
    const [, , r, p, salt, key] = good.split('$');
    for (const bad of [
      '',
      'bcrypt$x',
      `scrypt$1000$${r}$${p}$${salt}$${key}`, // N not a power of two
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${key}`, // N too large
      `scrypt$1024$999$${p}$${salt}$${key}`,
      `scrypt$1024$${r}$${p}$$${key}`,
      `scrypt$1024$${r}$${p}$${salt}$AAAA`,
    ])
      await expect(verifyPassword('x', bad)).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
  });
});
