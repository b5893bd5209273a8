import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { XTS_SECTOR_BYTES, XtsCipher } from './xts.js';

/** Node's own AES-256-XTS, one cipher object per sector (the plain64 IV as its tweak). */
function nodeXts(key: Uint8Array, firstSector: number, data: Uint8Array, encrypt: boolean): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += XTS_SECTOR_BYTES) {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(BigInt(firstSector + at / XTS_SECTOR_BYTES));
    const c = encrypt ? createCipheriv('aes-256-xts', key, iv) : createDecipheriv('aes-256-xts', key, iv);
    out.push(c.update(data.subarray(at, at + XTS_SECTOR_BYTES)), c.final());
  }
  return Buffer.concat(out);
}

/** A 64-byte key whose halves differ (OpenSSL refuses an XTS key with equal halves). */
const keyArb = fc
  .uint8Array({ minLength: 64, maxLength: 64 })
  .filter((k) => !Buffer.from(k.subarray(0, 32)).equals(Buffer.from(k.subarray(32))));

describe('XtsCipher', () => {
  it('encrypts byte for byte as Node’s aes-256-xts does per sector, and decrypts back', () => {
    fc.assert(
      fc.property(
        keyArb,
        // Sector numbers past 2^32 exercise the upper half of plain64.
        fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.integer({ min: 2 ** 32 - 8, max: 2 ** 40 })),
        fc.integer({ min: 1, max: 12 }),
        fc.integer(),
        (key, first, sectors, seed) => {
          const data = Buffer.alloc(sectors * XTS_SECTOR_BYTES);
          for (let i = 0; i < data.length; i++) data[i] = (seed * 31 + i * 7 + (i >> 9)) & 0xff;
          using xts = new XtsCipher(key);
          const ours = xts.encrypt(first, data);
          expect(ours.equals(nodeXts(key, first, data, true))).toBe(true);
          expect(xts.decrypt(first, ours).equals(data)).toBe(true);
          expect(xts.decrypt(first, nodeXts(key, first, data, true)).equals(data)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('handles runs longer than one OpenSSL call and unaligned buffers', () => {
    const key = randomBytes(64);
    const data = randomBytes(5000 * XTS_SECTOR_BYTES + 1).subarray(1); // byteOffset 1: not word-aligned
    using xts = new XtsCipher(key);
    const ours = xts.encrypt(77, data);
    expect(ours.equals(nodeXts(key, 77, data, true))).toBe(true);
    expect(xts.decrypt(77, ours).equals(data)).toBe(true);
  });

  it('writes into a caller’s buffer when given one, and refuses one too short', () => {
    const key = randomBytes(64);
    const data = randomBytes(3000 * XTS_SECTOR_BYTES);
    using xts = new XtsCipher(key);
    const out = Buffer.alloc(data.length + XTS_SECTOR_BYTES, 0xee);
    const ours = xts.encrypt(9, data, out);
    expect(ours.buffer).toBe(out.buffer);
    expect(ours.equals(nodeXts(key, 9, data, true))).toBe(true);
    expect(out[data.length]).toBe(0xee); // nothing past the input's length is touched
    const back = Buffer.alloc(data.length);
    expect(xts.decrypt(9, ours, back).equals(data)).toBe(true);
    expect(() => xts.encrypt(0, data, Buffer.alloc(512))).toThrow(InvalidInputError);
  });

  it('refuses partial sectors, bad sector numbers, a wrong key size and use after dispose', () => {
    const xts = new XtsCipher(randomBytes(64));
    expect(() => xts.encrypt(0, Buffer.alloc(100))).toThrow(InvalidInputError);
    expect(() => xts.encrypt(-1, Buffer.alloc(512))).toThrow(InvalidInputError);
    expect(() => new XtsCipher(randomBytes(32))).toThrow(InvalidInputError);
    xts.dispose();
    expect(() => xts.encrypt(0, Buffer.alloc(512))).toThrow(/disposed/);
  });
});
