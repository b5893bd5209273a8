import type { Duplex } from 'node:stream';
import { GuestProtocolError } from './errors.js';
import { FrameDecoder, encodeFrame, type DecodedItem } from './framing.js';
import type { Message } from './protocol.js';

/** What a {@link MessageStream} reports. */
export interface MessageStreamHandlers {
  onMessage(message: Message): void;
  onProblem(problem: Extract<DecodedItem, { kind: 'problem' }>): void;
  /** Once, when the stream ends, fails or is closed. */
  onClose(reason: string): void;
}

/**
 * Messages over one byte stream, both ways. Never throws on what it receives: bad bytes become
 * problems, and an exception in a handler is contained so the stream keeps going.
 */
export class MessageStream {
  readonly #stream: Duplex;
  readonly #decoder: FrameDecoder;
  readonly #handlers: MessageStreamHandlers;
  #closed = false;

  constructor(stream: Duplex, options: { maxMessageBytes: number } & MessageStreamHandlers) {
    this.#stream = stream;
    this.#decoder = new FrameDecoder(options.maxMessageBytes);
    this.#handlers = options;
    stream.on('data', (chunk: Buffer | string) => this.#receive(chunk));
    stream.once('end', () => this.#finish('the other end closed the channel'));
    stream.once('close', () => this.#finish('the channel closed'));
    stream.on('error', (err: Error) => this.#finish(`the channel failed: ${err.message}`));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a message; false when the stream is closed. Throws GuestProtocolError when it is too large. */
  send(message: Message): boolean {
    if (this.#closed || this.#stream.destroyed || !this.#stream.writable) return false;
    const frame = encodeFrame(message);
    if (frame.length - 2 > this.#decoder.maxBytes) {
      throw new GuestProtocolError(
        `A ${message.type} message of ${frame.length} bytes is larger than the ${this.#decoder.maxBytes}-byte limit.`,
        { details: { type: message.type, bytes: frame.length } },
      );
    }
    this.#stream.write(frame);
    return true;
  }

  /** Closes the stream (the other end sees EOF). */
  close(reason = 'closed by this end'): void {
    this.#finish(reason);
    this.#stream.destroy();
  }

  #receive(chunk: Buffer | string): void {
    if (this.#closed) return;
    const items = this.#decoder.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    for (const item of items) {
      try {
        if (item.kind === 'message') this.#handlers.onMessage(item.message);
        else this.#handlers.onProblem(item);
      } catch {
        // A handler's bug must not take the channel down; the handlers report their own errors.
      }
      if (this.#closed) return;
    }
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#decoder.reset();
    try {
      this.#handlers.onClose(reason);
    } catch {
      // see #receive
    }
  }
}
