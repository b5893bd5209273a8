import { inspect } from 'node:util';
import { InvalidStateError } from '../errors.js';

/**
 * Fills buffers with zeros. Node cannot promise that no copy of a secret survives anywhere in
 * memory (V8 may have moved a string, an OpenSSL context may hold a schedule), but every buffer
 * Tandem owns is wiped as soon as it is no longer needed.
 */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}

/**
 * Key bytes that exist only while used: {@link SecretKey.use} lends them to a function,
 * {@link SecretKey.dispose} (or `using`) zeroes them. They never reach JSON, `inspect` or a
 * string: only the key's public id does.
 */
export class SecretKey implements Disposable {
  #bytes: Buffer | undefined;
  /** A label for messages ("data key", "device sealing key"); never the key. */
  readonly label: string;

  /** Takes a copy of `bytes` in memory of its own (not Node's shared pool). */
  constructor(bytes: Uint8Array, label: string) {
    this.#bytes = Buffer.alloc(bytes.length);
    this.#bytes.set(bytes);
    this.label = label;
  }

  /** True once the key was disposed of. */
  get disposed(): boolean {
    return this.#bytes === undefined;
  }

  /** Number of key bytes. */
  get length(): number {
    return this.#bytes?.length ?? 0;
  }

  /** Calls `fn` with the key bytes; `fn` must not keep them. */
  use<T>(fn: (bytes: Buffer) => T): T {
    if (!this.#bytes) throw new InvalidStateError(`The ${this.label} was disposed of and cannot be used.`, 'disposed');
    return fn(this.#bytes);
  }

  /** Zeroes the key bytes; the key cannot be used afterwards. */
  dispose(): void {
    wipe(this.#bytes);
    this.#bytes = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toJSON(): Record<string, unknown> {
    return { secret: this.label };
  }

  toString(): string {
    return `[${this.label}]`;
  }

  [inspect.custom](): string {
    return `SecretKey [${this.label}]`;
  }
}
