import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { ChunkCipher, CHUNK_TAG_BYTES, DELTA_OVERHEAD_BYTES } from './chunk-cipher.js';
import { DataKey } from './data-key.js';

describe('chunk encryption', () => {
  const key = DataKey.generate();

  it('round-trips any chunk and is deterministic per data key (property)', () => {
    using a = new ChunkCipher(key);
    using b = new ChunkCipher(key);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (plain) => {
        const id = a.chunkId(plain);
        expect(b.chunkId(plain)).toBe(id);
        const sealed = a.encrypt(id, plain);
        expect(sealed.length).toBe(plain.length + CHUNK_TAG_BYTES);
        expect(b.encrypt(id, plain).equals(sealed)).toBe(true);
        expect(b.decrypt(id, sealed).equals(Buffer.from(plain))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('gives other ids and ciphertext under another data key, and ids are not SHA-256', async () => {
    using other = DataKey.generate();
    using a = new ChunkCipher(key);
    using b = new ChunkCipher(other);
    const plain = Buffer.from('the same chunk in two images');
    expect(a.chunkId(plain)).not.toBe(b.chunkId(plain));
    const { createHash } = await import('node:crypto');
    expect(a.chunkId(plain)).not.toBe(createHash('sha256').update(plain).digest('hex'));
  });

  it('refuses a tampered ciphertext, a wrong id and a wrong key with IntegrityError (property)', () => {
    using a = new ChunkCipher(key);
    using wrong = new ChunkCipher(DataKey.generate());
    const plain = Buffer.alloc(1000, 7);
    const id = a.chunkId(plain);
    const sealed = a.encrypt(id, plain);
    fc.assert(
      fc.property(fc.nat({ max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Buffer.from(sealed);
        bad[at]! ^= x;
        expect(() => a.decrypt(id, bad)).toThrow(expect.objectContaining({ code: 'TANDEM_INTEGRITY' }));
      }),
      { numRuns: 50 },
    );
    expect(() => wrong.decrypt(id, sealed)).toThrow(expect.objectContaining({ code: 'TANDEM_INTEGRITY' }));
    expect(() => a.decrypt(a.chunkId(Buffer.from('other')), sealed)).toThrow(
      expect.objectContaining({ code: 'TANDEM_INTEGRITY' }),
    );
    expect(() => a.decrypt(id, sealed.subarray(0, 10))).toThrow(expect.objectContaining({ code: 'TANDEM_INTEGRITY' }));
  });
});

describe('delta encryption', () => {
  const key = DataKey.generate();
  const [id, base] = ['a1'.repeat(32), 'b2'.repeat(32)];

  it('round-trips any delta under a random nonce, bound to its pair of chunk ids (property)', () => {
    using a = new ChunkCipher(key);
    using b = new ChunkCipher(key);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (delta) => {
        const sealed = a.encryptDelta(id, base, delta);
        expect(sealed.length).toBe(delta.length + DELTA_OVERHEAD_BYTES);
        expect(b.decryptDelta(id, base, sealed).equals(Buffer.from(delta))).toBe(true);
        // Not deterministic: a fixed nonce would be reused if another packer made other bytes.
        expect(a.encryptDelta(id, base, delta).equals(sealed)).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a tampered delta, swapped ids, a wrong key and a short one with IntegrityError', () => {
    using a = new ChunkCipher(key);
    using wrong = new ChunkCipher(DataKey.generate());
    const sealed = a.encryptDelta(id, base, Buffer.from('a delta of a chunk against its base'));
    const integrity = expect.objectContaining({ code: 'TANDEM_INTEGRITY' });
    const bad = Buffer.from(sealed);
    bad[20]! ^= 1;
    expect(() => a.decryptDelta(id, base, bad)).toThrow(integrity);
    expect(() => a.decryptDelta(base, id, sealed)).toThrow(integrity);
    expect(() => wrong.decryptDelta(id, base, sealed)).toThrow(integrity);
    expect(() => a.decryptDelta(id, base, sealed.subarray(0, DELTA_OVERHEAD_BYTES - 1))).toThrow(integrity);
    // A delta never decrypts as a chunk, nor a chunk as a delta.
    expect(() => a.decrypt(id, sealed)).toThrow(integrity);
  });
});

describe('data keys', () => {
  it('never show their bytes, and are zeroed on dispose', () => {
    const key = DataKey.generate();
    const hex = key.use((b) => b.toString('hex'));
    const b64 = key.use((b) => b.toString('base64'));
    const shown = [
      JSON.stringify({ key }),
      String(key),
      inspect(key),
      inspect({ key }, { depth: 5, showHidden: true }),
    ];
    for (const s of shown) {
      expect(s).not.toContain(hex);
      expect(s).not.toContain(b64);
      expect(s).toContain(key.id);
    }
    let held: Buffer | undefined;
    key.use((b) => (held = b));
    key.dispose();
    expect(held?.every((x) => x === 0)).toBe(true);
    expect(() => key.use(() => 0)).toThrow(expect.objectContaining({ code: 'TANDEM_INVALID_STATE' }));
  });

  it('refuses bytes of the wrong length', () => {
    expect(() => new DataKey(Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'TANDEM_INVALID_INPUT' }));
  });
});
