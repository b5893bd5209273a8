import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_START, FrameDecoder, encodeFrame, type DecodedItem } from './framing.js';
import type { Message } from './protocol.js';

const messages = (items: DecodedItem[]): Message[] => items.flatMap((i) => (i.kind === 'message' ? [i.message] : []));
const problems = (items: DecodedItem[]): string[] => items.flatMap((i) => (i.kind === 'problem' ? [i.problem] : []));

const ping: Message = { type: 'request', id: 1, method: 'ping' };
const hello: Message = {
  type: 'hello',
  role: 'agent',
  software: '@tandem/guest-agent',
  version: '0.1.0',
  protocols: [1],
  capabilities: ['info', 'some-future-thing'],
  instance: 'abc',
};

// Messages as fast-check generates them: every kind, with strings that hold newlines, 0xFF's
// code point (ÿ), lone surrogates and emoji, which must survive the framing.
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const arbMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('sync' as const), id: text.filter((s) => s.length > 0 && s.length <= 128) }),
  fc.record({
    type: fc.constant('request' as const),
    id: fc.integer({ min: 1, max: 2 ** 40 }),
    method: text.filter((s) => s.length > 0 && s.length <= 64),
    params: fc.jsonValue(),
  }),
  fc.record({ type: fc.constant('reply' as const), id: fc.integer({ min: 1, max: 1e9 }), result: fc.jsonValue() }),
  fc.record({
    type: fc.constant('event' as const),
    name: text.filter((s) => s.length > 0 && s.length <= 64),
    data: fc.jsonValue(),
  }),
);

function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

describe('framing', () => {
  it('frames a message as 0xFF, JSON and a newline', () => {
    const frame = encodeFrame(ping);
    expect(frame[0]).toBe(FRAME_START);
    expect(frame[frame.length - 1]).toBe(0x0a);
    expect(JSON.parse(frame.subarray(1, -1).toString('utf8'))).toEqual(ping);
  });

  it('drops a half-written message when the next one starts: the next one is read whole', () => {
    const d = new FrameDecoder(1024);
    const half = encodeFrame(hello).subarray(0, 20);
    const items = d.push(Buffer.concat([half, encodeFrame(ping)]));
    expect(problems(items)).toEqual(['truncated']);
    expect(messages(items)).toEqual([ping]);
  });

  it('reports bytes outside a frame (a console banner) and keeps going', () => {
    const d = new FrameDecoder(1024);
    const items = d.push(Buffer.concat([Buffer.from('Booting the kernel...\n'), encodeFrame(ping)]));
    expect(problems(items)).toEqual(['stray']);
    expect(messages(items)).toEqual([ping]);
  });

  it('drops an oversized message without holding it, and reads the next one', () => {
    const d = new FrameDecoder(64);
    const big = encodeFrame({ type: 'event', name: 'x', data: 'y'.repeat(10_000) });
    const items = [...d.push(big.subarray(0, 5000)), ...d.push(big.subarray(5000)), ...d.push(encodeFrame(ping))];
    expect(problems(items)).toEqual(['oversized']);
    expect(messages(items)).toEqual([ping]);
  });

  it('reports JSON that is not a protocol message as malformed, with the request id when it has one', () => {
    const d = new FrameDecoder(1024);
    const bad = Buffer.concat([
      Buffer.from([FRAME_START]),
      Buffer.from(JSON.stringify({ type: 'request', id: 7, method: '' })),
      Buffer.from('\n'),
    ]);
    const items = d.push(Buffer.concat([bad, Buffer.from([FRAME_START]), Buffer.from('{nope\n')]));
    expect(items).toMatchObject([
      { kind: 'problem', problem: 'malformed', id: 7 },
      { kind: 'problem', problem: 'malformed', detail: 'not JSON' },
    ]);
  });

  it('keeps unknown capabilities in a hello (the receiver ignores them)', () => {
    const items = new FrameDecoder(1024).push(encodeFrame(hello));
    expect(messages(items)).toEqual([hello]);
  });

  it('property: any messages, split anywhere, come out as they went in', () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (list, cuts) => {
        const d = new FrameDecoder(1 << 20);
        const bytes = Buffer.concat(list.map(encodeFrame));
        const out = chunked(bytes, cuts).flatMap((c) => d.push(c));
        expect(problems(out)).toEqual([]);
        expect(messages(out)).toEqual(list.map((m) => JSON.parse(JSON.stringify(m)) as Message));
      }),
    );
  });

  it('property (fuzz): whatever bytes come first, the decoder never throws and the next message is read', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        arbMessage,
        fc.array(fc.nat(), { maxLength: 10 }),
        (garbage, message, cuts) => {
          const d = new FrameDecoder(256);
          const frame = encodeFrame(message);
          fc.pre(frame.length - 2 <= 256);
          const out = chunked(Buffer.concat([Buffer.from(garbage), frame]), cuts).flatMap((c) => d.push(c));
          const last = out.filter((i) => i.kind === 'message').at(-1);
          expect(last).toEqual({ kind: 'message', message: JSON.parse(JSON.stringify(message)) as Message });
        },
      ),
    );
  });

  it('property (fuzz): arbitrary bytes never make it hold more than its limit', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        const d = new FrameDecoder(100);
        for (const c of chunks) {
          for (const item of d.push(c)) {
            if (item.kind === 'message')
              expect(Buffer.byteLength(JSON.stringify(item.message))).toBeLessThanOrEqual(100);
          }
        }
      }),
    );
  });
});
