import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkCipher } from '../crypto/chunk-cipher.js';
import { DataKey } from '../crypto/data-key.js';
import { IntegrityError } from '../errors.js';
import { encodeEncryptedChunk } from './encryption.js';
import { EncryptedChunkDecoders, type SealedChunk } from './workers.js';

/** A range of sealed chunks as a pack holds them: compressible ones and one stored as is. */
function sealedRange(cipher: ChunkCipher): { body: Buffer; chunks: SealedChunk[]; plains: Buffer[] } {
  const plains = [Buffer.alloc(70_000, 7), randomBytes(5000), Buffer.from('tandem '.repeat(3000))];
  const parts: Buffer[] = [];
  const chunks: SealedChunk[] = [];
  let at = 0;
  for (const p of plains) {
    const id = cipher.chunkId(p);
    const [c, tag] = encodeEncryptedChunk(cipher, id, p);
    parts.push(c, tag);
    chunks.push({ id, at, size: c.length + tag.length, length: p.length });
    at += c.length + tag.length;
  }
  return { body: Buffer.concat(parts), chunks, plains };
}

describe('EncryptedChunkDecoders', () => {
  let decoders: EncryptedChunkDecoders | undefined;
  afterEach(async () => {
    await decoders?.close();
    decoders = undefined;
  });

  it('decodes a range in worker threads into its plaintexts, in chunk order', async () => {
    using cipher = new ChunkCipher(DataKey.generate());
    decoders = new EncryptedChunkDecoders(cipher.chunkKeys(), 2);
    const { body, chunks, plains } = sealedRange(cipher);
    for (let round = 0; round < 3; round++) {
      const out = await decoders.decode(Buffer.from(body), chunks, 'pack 0');
      expect(out.map((b) => b.toString('hex'))).toEqual(plains.map((b) => b.toString('hex')));
    }
  });

  it('refuses a tampered chunk and another image’s key with IntegrityError naming the chunk', async () => {
    using cipher = new ChunkCipher(DataKey.generate());
    const { body, chunks } = sealedRange(cipher);
    decoders = new EncryptedChunkDecoders(cipher.chunkKeys(), 1);
    const bad = Buffer.from(body);
    bad[chunks[1]!.at + 3]! ^= 1;
    const err = await decoders.decode(bad, chunks, 'pack 0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).details['chunk']).toBe(chunks[1]!.id);
    await decoders.close();
    using other = new ChunkCipher(DataKey.generate());
    decoders = new EncryptedChunkDecoders(other.chunkKeys(), 1);
    await expect(decoders.decode(Buffer.from(body), chunks, 'pack 0')).rejects.toThrow(/does not decrypt/);
  });

  it('stops its threads on close (the keys are dropped first): a decode afterwards is refused', async () => {
    using cipher = new ChunkCipher(DataKey.generate());
    const { body, chunks } = sealedRange(cipher);
    decoders = new EncryptedChunkDecoders(cipher.chunkKeys(), 1);
    await decoders.close();
    await expect(decoders.decode(Buffer.from(body), chunks, 'pack 0')).rejects.toThrow();
    decoders = undefined;
  });
});
