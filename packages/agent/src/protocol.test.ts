import fc from 'fast-check';
import { TandemError } from '@tandem/core';
import { describe, expect, it } from 'vitest';
import { AGENT_METHODS, LineDecoder, compatibleVersion, decodeRequest, toWireError } from './protocol.js';

describe('decodeRequest', () => {
  it('turns any input into a request or a typed protocol error, never anything else', () => {
    const anyJson = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record({
          id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
          method: fc.constantFrom(...AGENT_METHODS, 'x'),
          params: fc.anything(),
        })
        .map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(anyJson, (line) => {
        try {
          const r = decodeRequest(line);
          expect(AGENT_METHODS).toContain(r.method);
        } catch (err) {
          expect(TandemError.is(err, 'TANDEM_AGENT_PROTOCOL')).toBe(true);
          expect(toWireError(err)).toMatchObject({ code: 'TANDEM_AGENT_PROTOCOL', fault: 'user', retryable: false });
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps the id of a request it refuses, so the client can match the error', () => {
    expect(() => decodeRequest('{"id":9,"method":"up","params":{}}')).toThrow(
      expect.objectContaining({ details: { id: 9 } }),
    );
  });

  it('compares major versions only', () => {
    expect(compatibleVersion('1.9', '1.0')).toBe(true);
    expect(compatibleVersion('0.3', '1.0')).toBe(true);
    expect(compatibleVersion('2.0', '1.0')).toBe(false);
  });
});

describe('LineDecoder', () => {
  it('yields the same lines however the stream is cut, and skips oversized lines whole', () => {
    const line = fc.string({ maxLength: 40 }).map((s) => s.replace(/\n/g, ' '));
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1 }),
        (lines, cuts) => {
          const bytes = Buffer.from(lines.map((l) => l + '\n').join(''));
          let over = 0;
          const d = new LineDecoder(24, () => over++);
          const out: string[] = [];
          let at = 0;
          let i = 0;
          while (at < bytes.length) {
            const n = cuts[i++ % cuts.length]!;
            out.push(...d.push(bytes.subarray(at, at + n)));
            at += n;
          }
          const fits = lines.filter((l) => Buffer.byteLength(l) <= 24);
          expect(out).toEqual(fits.filter((l) => l.trim().length > 0));
          expect(over).toBe(lines.length - fits.length);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
