// InOrderDigest (issue 11): the SHA-256 of an image hashed as it is written equals the SHA-256 of
// the whole image, whatever the order of the writes and zero runs; a write over what was already
// hashed makes it answer undefined (the pull then reads the image back).
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InOrderDigest } from './in-order-digest.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('InOrderDigest', () => {
  it('equals the whole image SHA-256 for any write order, reading back only what came ahead', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        fc.infiniteStream(fc.nat()),
        async (lengths, zero, order) => {
          const size = lengths.reduce((a, b) => a + b, 0);
          const image = Buffer.alloc(size);
          const pieces: { at: number; end: number; zero: boolean }[] = [];
          let at = 0;
          for (const [i, n] of lengths.entries()) {
            const z = zero[i]!;
            if (!z) randomBytes(n).copy(image, at);
            pieces.push({ at, end: at + n, zero: z });
            at += n;
          }
          const d = new InOrderDigest();
          // Zero runs first, in image order, as the pull marks them; then the writes in any order.
          for (const p of pieces) if (p.zero) d.zero(p.at, p.end);
          const writes = pieces.filter((p) => !p.zero);
          const shuffled: typeof writes = [];
          const it = order[Symbol.iterator]();
          while (writes.length > 0) shuffled.push(writes.splice(it.next().value % writes.length, 1)[0]!);
          const disk = Buffer.alloc(size);
          let readBack = 0;
          const read = async (from: number, to: number): Promise<Buffer> => {
            readBack += to - from;
            return Buffer.from(disk.subarray(from, to));
          };
          for (const p of shuffled) {
            image.copy(disk, p.at, p.at, p.end);
            await d.wrote(p.at, image.subarray(p.at, p.end), read);
          }
          expect(await d.finish(size, read)).toBe(sha(image));
          expect(readBack).toBeLessThanOrEqual(size);
        },
      ),
    );
  });

  it('reads nothing back when the writes come in image order', async () => {
    const image = randomBytes(10_000);
    const d = new InOrderDigest();
    const read = (): Promise<Buffer> => Promise.reject(new Error('nothing should be read back'));
    for (let at = 0; at < image.length; at += 1000) await d.wrote(at, image.subarray(at, at + 1000), read);
    expect(await d.finish(image.length, read)).toBe(sha(image));
  });

  it('answers undefined after a write over what was hashed, or when the image is not covered', async () => {
    const read = async (from: number, to: number): Promise<Buffer> => Buffer.alloc(to - from);
    const over = new InOrderDigest();
    await over.wrote(0, Buffer.alloc(100, 1), read);
    await over.wrote(50, Buffer.alloc(10, 2), read);
    await over.wrote(100, Buffer.alloc(100, 3), read);
    expect(await over.finish(200, read)).toBeUndefined();

    const gap = new InOrderDigest();
    await gap.wrote(0, Buffer.alloc(100, 1), read);
    expect(await gap.finish(200, read)).toBeUndefined();
  });
});
