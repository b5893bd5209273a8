// The LUKS1 header Tandem writes for a new encrypted qcow2 (issue 11), read back by the LUKS1
// reader of @tandem/core/crypto: the AF split merges back to the key, the header opens with its
// passphrase and no other. QEMU's side is encrypted-luks-header.integ.test.ts.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { afMerge, parseLuks1Header, recoverLuks1MasterKey } from '@tandem/core/crypto';
import { afSplit, LUKS_ITERATIONS, LUKS_REGION_BYTES, luks1Region } from './encrypted-luks-header.js';

describe('LUKS1 header writer', () => {
  it('afSplit is the inverse of afMerge, for any key and stripe count', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.integer({ min: 1, max: 40 }), (key, stripes) => {
        const split = afSplit(key, stripes);
        expect(split.length).toBe(key.length * stripes);
        expect(afMerge(split, key.length, stripes, 'sha256').equals(Buffer.from(key))).toBe(true);
      }),
    );
  });

  it('lays the header out as qemu-img does, opens with its passphrase only, and a fresh master key each time', async () => {
    const passphrase = randomBytes(32).toString('base64');
    const region = await luks1Region(passphrase);
    expect(region.length).toBe(LUKS_REGION_BYTES);
    const h = parseLuks1Header(region);
    expect([h.cipherName, h.cipherMode, h.hashSpec, h.keyBytes, h.payloadOffset]).toEqual([
      'aes',
      'xts-plain64',
      'sha256',
      64,
      4040,
    ]);
    expect(h.mkDigestIterations).toBe(LUKS_ITERATIONS);
    expect(h.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(h.keySlots.map((s) => [s.active, s.keyMaterialOffset, s.stripes])).toEqual(
      Array.from({ length: 8 }, (_, k) => [k === 0, 8 + k * 504, 4000]),
    );
    expect(h.keySlots[0]!.iterations).toBe(LUKS_ITERATIONS);
    const master = await recoverLuks1MasterKey(region, passphrase);
    const again = await recoverLuks1MasterKey(await luks1Region(passphrase), passphrase);
    try {
      expect(master.use((a) => again.use((b) => Buffer.from(a).equals(Buffer.from(b))))).toBe(false);
    } finally {
      master.dispose();
      again.dispose();
    }
    const err = await recoverLuks1MasterKey(region, randomBytes(32).toString('base64')).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_AUTH'), String(err)).toBe(true);
  });

  it('refuses an iteration count that LUKS1 cannot hold', async () => {
    for (const bad of [0, -1, 1.5, 2 ** 32]) {
      const err = await luks1Region('x', bad).catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_INVALID_INPUT'), String(err)).toBe(true);
      expect(String(err)).toContain('iterations');
    }
  });
});
