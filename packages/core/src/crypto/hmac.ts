import { createHash, type Hash } from 'node:crypto';
import { wipe } from './secret.js';

const BLOCK = 64;

/**
 * HMAC-SHA256 (RFC 2104) under one key for many messages, exactly `createHmac('sha256', key)`,
 * but with the inner and outer pad blocks hashed once: each message costs two copies of a
 * prepared hash state instead of a new HMAC object (which costs as much as hashing several KiB
 * in Node). Chunk ids and per-chunk keys are one HMAC per chunk.
 */
export class Hmac256 implements Disposable {
  #inner: Hash;
  #outer: Hash;

  constructor(key: Uint8Array) {
    const k = Buffer.alloc(BLOCK);
    if (key.length > BLOCK) createHash('sha256').update(key).digest().copy(k);
    else k.set(key);
    const pad = Buffer.alloc(BLOCK);
    for (let i = 0; i < BLOCK; i++) pad[i] = k[i]! ^ 0x36;
    this.#inner = createHash('sha256').update(pad);
    for (let i = 0; i < BLOCK; i++) pad[i] = k[i]! ^ 0x5c;
    this.#outer = createHash('sha256').update(pad);
    wipe(k, pad);
  }

  /** HMAC-SHA256 of `data`. */
  digest(data: Uint8Array): Buffer {
    const inner = this.#inner.copy().update(data).digest();
    return this.#outer.copy().update(inner).digest();
  }

  /** Drops the prepared states (Node offers no way to zero a hash state). */
  dispose(): void {
    this.#inner = createHash('sha256');
    this.#outer = createHash('sha256');
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
