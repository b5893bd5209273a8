import { createHash, type Hash } from 'node:crypto';

/** Bytes hashed per step of a zero run or a read back. */
const PIECE = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(PIECE);

/**
 * The SHA-256 of an image's plaintext, computed as the image is written instead of by reading it
 * all back at the end. A write that lands at the hashed frontier is hashed from memory; a write
 * ahead of it is only noted, and read back (decrypted) when the frontier reaches it; zero runs are
 * hashed as zeros. A pull fetches ranges in image order, so little is read back. A write behind
 * the frontier (an overwrite of what was hashed) spoils the digest: {@link InOrderDigest.finish}
 * then answers undefined and the caller reads the whole image back as before.
 */
export class InOrderDigest {
  readonly #hash: Hash = createHash('sha256');
  #frontier = 0;
  /** Written but not hashed yet: start -> end. */
  readonly #ahead = new Map<number, number>();
  /** Zero runs: start -> end. */
  readonly #zeros = new Map<number, number>();
  #spoiled = false;

  /** Notes a zero run (`from` to `to`). */
  zero(from: number, to: number): void {
    if (from < this.#frontier) this.#spoiled = true;
    else if (to > from) this.#zeros.set(from, to);
  }

  /**
   * Notes that `data` was written at `offset` (after it was), hashing what it can.
   * `readBack(from, to)` reads the image's plaintext there.
   */
  async wrote(
    offset: number,
    data: Uint8Array,
    readBack: (from: number, to: number) => Promise<Buffer>,
  ): Promise<void> {
    if (this.#spoiled || data.length === 0) return;
    if (offset < this.#frontier) {
      this.#spoiled = true;
    } else if (offset === this.#frontier) {
      this.#hash.update(data);
      this.#frontier += data.length;
      await this.#advance(readBack);
    } else {
      this.#ahead.set(offset, Math.max(this.#ahead.get(offset) ?? 0, offset + data.length));
    }
  }

  /**
   * The digest (hex) of the first `length` bytes, or undefined when some write spoiled it or the
   * writes and zero runs do not cover exactly that much. Called once.
   */
  async finish(length: number, readBack: (from: number, to: number) => Promise<Buffer>): Promise<string | undefined> {
    if (this.#spoiled) return undefined;
    await this.#advance(readBack);
    if (this.#spoiled || this.#frontier !== length) return undefined;
    this.#spoiled = true; // digest() may be called once
    return this.#hash.digest('hex');
  }

  async #advance(readBack: (from: number, to: number) => Promise<Buffer>): Promise<void> {
    for (;;) {
      const at = this.#frontier;
      const zeroEnd = this.#zeros.get(at);
      const aheadEnd = this.#ahead.get(at);
      if (zeroEnd !== undefined) {
        this.#zeros.delete(at);
        for (let p = at; p < zeroEnd; p += PIECE) this.#hash.update(ZEROS.subarray(0, Math.min(PIECE, zeroEnd - p)));
        this.#frontier = zeroEnd;
      } else if (aheadEnd !== undefined) {
        this.#ahead.delete(at);
        for (let p = at; p < aheadEnd; p += PIECE) {
          const plain = await readBack(p, Math.min(aheadEnd, p + PIECE));
          this.#hash.update(plain);
          plain.fill(0);
        }
        this.#frontier = aheadEnd;
      } else {
        return;
      }
      // Notes that started inside what was just hashed are covered (or were overwritten: read back above).
      for (const [start] of this.#ahead) if (start < this.#frontier) this.#ahead.delete(start);
    }
  }
}
