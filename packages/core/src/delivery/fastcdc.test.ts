import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { chunkBuffer, chunkFile, chunkingParams, DEFAULT_CHUNKING } from './fastcdc.js';
import { GEAR, gearTableDigest } from './gear.js';

const SMALL = chunkingParams({ minSize: 256, avgSize: 1024, maxSize: 4096 });

describe('gear table', () => {
  it('is pinned: its digest never changes', () => {
    // Changing the table would move every chunk boundary of every published image.
    expect(gearTableDigest(GEAR)).toBe('29b2d250eca508ccffa83081fccbabe157bf0feef9b09dfde98c746d44ee968d');
    expect(DEFAULT_CHUNKING.gearSha256).toBe(gearTableDigest(GEAR));
    expect(new Set(GEAR).size).toBe(256);
  });
});

describe('FastCDC', () => {
  it('defaults to 16/64/256 KiB without normalization', () => {
    expect(DEFAULT_CHUNKING).toMatchObject({
      algorithm: 'fastcdc',
      minSize: 16384,
      avgSize: 65536,
      maxSize: 262144,
      normalization: 0,
    });
  });

  it('cuts any input into chunks that tile it, within the size bounds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40_000 }), (data) => {
        const spans = [...chunkBuffer(data, SMALL)];
        let offset = 0;
        spans.forEach((s, i) => {
          expect(s.offset).toBe(offset);
          expect(s.length).toBeLessThanOrEqual(SMALL.maxSize);
          if (i < spans.length - 1) expect(s.length).toBeGreaterThan(SMALL.minSize);
          offset += s.length;
        });
        expect(offset).toBe(data.length);
      }),
      { numRuns: 200 },
    );
  });

  it('finds the same boundaries after an edit, away from it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 60_000 }),
        fc.uint8Array({ minLength: 1, maxLength: 500 }),
        fc.boolean(),
        (at, edit, insert) => {
          const data = randomBytes(80_000);
          const changed = Buffer.concat([data.subarray(0, at), edit, data.subarray(insert ? at : at + edit.length)]);
          const cuts = (b: Uint8Array): Set<string> =>
            new Set(
              [...chunkBuffer(b, SMALL)].map((s) =>
                Buffer.from(b.subarray(s.offset, s.offset + s.length)).toString('hex'),
              ),
            );
          const before = cuts(data);
          const after = [...cuts(changed)];
          const shared = after.filter((c) => before.has(c)).reduce((n, c) => n + c.length / 2, 0);
          // Only the chunks around the edit differ.
          expect(changed.length - shared).toBeLessThanOrEqual(edit.length + 3 * SMALL.maxSize);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('gives a run of zeros maximum-size chunks', () => {
    const data = Buffer.concat([randomBytes(5000), Buffer.alloc(10 * SMALL.maxSize), randomBytes(5000)]);
    const zeroChunks = [...chunkBuffer(data, SMALL)].filter((s) =>
      data.subarray(s.offset, s.offset + s.length).every((b) => b === 0),
    );
    expect(zeroChunks.length).toBeGreaterThanOrEqual(8);
    for (const s of zeroChunks.slice(0, -1)) expect(s.length).toBe(SMALL.maxSize);
  });

  it('averages close to the asked-for size on random data', () => {
    // Pseudo-random bytes from a fixed key (AES-256-CTR over zeros): the same 32 MiB every run,
    // so a statistical bound cannot fail one run in a few hundred as fresh random data did.
    for (const label of [1, 2, 3]) {
      const key = Buffer.alloc(32, label);
      const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(32 << 20));
      const spans = [...chunkBuffer(data)];
      const mean = data.length / spans.length;
      expect(mean).toBeGreaterThan(56 * 1024);
      expect(mean).toBeLessThan(72 * 1024);
    }
  });

  it('cuts a file exactly as it cuts the same bytes in memory, whatever the read block size', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tandem-cdc-'));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: 4096, max: 70_000 }),
        async (size, blockSize) => {
          const data = randomBytes(size);
          const file = join(dir, 'f');
          await writeFile(file, data);
          const fromFile: [number, number][] = [];
          for await (const c of chunkFile(file, SMALL, { blockSize })) {
            expect(Buffer.compare(Buffer.from(c.data), data.subarray(c.offset, c.offset + c.length))).toBe(0);
            fromFile.push([c.offset, c.length]);
          }
          expect(fromFile).toEqual([...chunkBuffer(data, SMALL)].map((s) => [s.offset, s.length]));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('refuses unusable parameters with InvalidInputError', () => {
    expect(() => chunkingParams({ avgSize: 60_000 })).toThrow(InvalidInputError);
    expect(() => chunkingParams({ minSize: 70_000 })).toThrow(/minSize < avgSize/);
    expect(() => chunkingParams({ normalization: 9 })).toThrow(/normalization/);
    expect(() => [...chunkBuffer(new Uint8Array(10), { ...DEFAULT_CHUNKING, gearSha256: 'ab'.repeat(32) })]).toThrow(
      /gear table/,
    );
  });
});
