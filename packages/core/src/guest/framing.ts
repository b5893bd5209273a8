import { MessageSchema, type Message } from './protocol.js';

/**
 * Framing: every message is the byte 0xFF, one line of JSON (UTF-8) and `\n`.
 *
 * Why: the stream outlives both ends. After a timeout, a reconnect, an agent restart or a guest
 * reboot, either end may hold half a message the other will never finish. qemu-guest-agent
 * answers this with `guest-sync-delimited`, whose reply starts with 0xFF: a byte that never
 * occurs in UTF-8, so a reader that drops everything up to the next 0xFF is back on a message
 * boundary whatever came before. Tandem puts the 0xFF in front of EVERY message, so no partial
 * message can ever be glued to the next one, and uses `sync`/`sync-ack` with a fresh id on top
 * to tell stale replies from new ones. JSON.stringify never writes a raw newline, so `\n` can
 * only end a message.
 */
export const FRAME_START = 0xff;
const NEWLINE = 0x0a;

/** Encodes a message as one frame. */
export function encodeFrame(message: Message): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  const frame = Buffer.allocUnsafe(json.length + 2);
  frame[0] = FRAME_START;
  json.copy(frame, 1);
  frame[frame.length - 1] = NEWLINE;
  return frame;
}

/** What the decoder found: a message, or bytes it had to drop and why. */
export type DecodedItem =
  | { readonly kind: 'message'; readonly message: Message }
  | {
      readonly kind: 'problem';
      /** `oversized`: longer than the limit; `truncated`: cut short by the next 0xFF; `stray`: bytes outside a frame; `malformed`: not a valid message. */
      readonly problem: 'oversized' | 'truncated' | 'stray' | 'malformed';
      readonly detail: string;
      /** The request id, when a malformed message still showed one. */
      readonly id?: number;
    };

/**
 * Turns a byte stream into messages. Never throws: whatever the bytes, it returns messages and
 * problems, and holds at most `maxBytes` of one unfinished frame.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder(1 << 20);
 * for (const item of decoder.push(chunk)) if (item.kind === 'message') handle(item.message);
 * ```
 */
export class FrameDecoder {
  #parts: Buffer[] = [];
  #size = 0;
  /** `seek`: outside a frame; `frame`: inside one; `skip`: dropping the rest of an oversized frame. */
  #state: 'seek' | 'frame' | 'skip' = 'seek';
  #stray = 0;

  constructor(readonly maxBytes: number) {}

  /** Drops any unfinished frame (after a reconnect). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#state = 'seek';
    this.#stray = 0;
  }

  push(chunk: Uint8Array): DecodedItem[] {
    const out: DecodedItem[] = [];
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    while (i < buf.length) {
      if (this.#state === 'seek' || this.#state === 'skip') {
        const start = buf.indexOf(FRAME_START, i);
        const end = start === -1 ? buf.length : start;
        if (this.#state === 'seek') this.#stray += countNonBlank(buf, i, end);
        if (start === -1) break;
        this.#flushStray(out);
        this.#state = 'frame';
        this.#parts = [];
        this.#size = 0;
        i = start + 1;
        continue;
      }
      // Inside a frame: up to the newline, or a 0xFF that starts another one.
      let j = i;
      while (j < buf.length && buf[j] !== NEWLINE && buf[j] !== FRAME_START) j++;
      const piece = buf.subarray(i, j);
      if (this.#size + piece.length > this.maxBytes) {
        out.push({ kind: 'problem', problem: 'oversized', detail: `a message longer than ${this.maxBytes} bytes` });
        this.#parts = [];
        this.#size = 0;
        this.#state = 'skip';
        i = j;
        continue;
      }
      this.#parts.push(Buffer.from(piece));
      this.#size += piece.length;
      if (j === buf.length) break;
      if (buf[j] === FRAME_START) {
        out.push({ kind: 'problem', problem: 'truncated', detail: `a message cut short after ${this.#size} bytes` });
        this.#parts = [];
        this.#size = 0;
        i = j + 1;
        continue;
      }
      out.push(parseFrame(Buffer.concat(this.#parts, this.#size)));
      this.#parts = [];
      this.#size = 0;
      this.#state = 'seek';
      i = j + 1;
    }
    this.#flushStray(out);
    return out;
  }

  #flushStray(out: DecodedItem[]): void {
    if (this.#stray === 0) return;
    out.push({ kind: 'problem', problem: 'stray', detail: `${this.#stray} bytes outside a message` });
    this.#stray = 0;
  }
}

/** Whitespace between frames is tolerated (a human typing into a test socket); other bytes are reported. */
function countNonBlank(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let k = from; k < to; k++) {
    const b = buf[k];
    if (b !== 0x0a && b !== 0x0d && b !== 0x20 && b !== 0x09) n++;
  }
  return n;
}

function parseFrame(bytes: Buffer): DecodedItem {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { kind: 'problem', problem: 'malformed', detail: 'not JSON' };
  }
  const parsed = MessageSchema.safeParse(value);
  if (parsed.success) return { kind: 'message', message: parsed.data };
  const id = requestIdOf(value);
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return {
    kind: 'problem',
    problem: 'malformed',
    detail: `not a valid message${where}: ${issue?.message ?? 'invalid'}`.slice(0, 500),
    ...(id === undefined ? {} : { id }),
  };
}

function requestIdOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { type, id } = value as { type?: unknown; id?: unknown };
  return type === 'request' && typeof id === 'number' && Number.isSafeInteger(id) && id >= 1 ? id : undefined;
}
