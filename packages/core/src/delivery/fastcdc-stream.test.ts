import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkBuffer, chunkingParams, chunkStream } from './fastcdc.js';

describe('chunkStream', () => {
  const params = chunkingParams({ avgSize: 4096 });
  const data = randomBytes(200_000);
  const whole = [...chunkBuffer(data, params)];

  it('cuts where chunkBuffer cuts, whatever the block sizes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 }), async (sizes) => {
        async function* blocks(): AsyncGenerator<Uint8Array> {
          let at = 0;
          for (let i = 0; at < data.length; i++) {
            const n = sizes[i % sizes.length]!;
            yield data.subarray(at, at + n);
            at += n;
          }
        }
        const got: { offset: number; length: number }[] = [];
        for await (const c of chunkStream(blocks(), params)) {
          expect(Buffer.compare(c.data, data.subarray(c.offset, c.offset + c.length))).toBe(0);
          got.push({ offset: c.offset, length: c.length });
        }
        expect(got).toEqual(whole);
      }),
      { numRuns: 20 },
    );
  });
});
