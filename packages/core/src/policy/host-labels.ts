import { hashStep } from './label-trie.js';

/**
 * The labels of one host name: where each ends and its hash (see labelHash). The fast path of
 * normalizeUrl records them while it reads the host, and the matcher reuses them when it is
 * given that same host (the same string), so that a URL's host is read once for both. Any other
 * host has its labels computed on demand; either way they are those of the host asked about.
 */
export class HostLabels {
  /** The host whose labels are held, or undefined while none is. */
  #host: string | undefined = undefined;
  #count = 0;
  /** The hash of each label, first label first. */
  hashes = new Int32Array(64);
  /** Where each label ends in the host (the index of the dot after it, or the host's length). */
  ends = new Int32Array(64);

  /** The number of labels of `host`, whose hashes and ends are then in `hashes` and `ends`. */
  of(host: string): number {
    if (host === this.#host) return this.#count;
    this.begin();
    let h = 0;
    for (let i = 0; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c === 46) {
        this.add(h, i);
        h = 0;
      } else h = hashStep(h, c);
    }
    this.add(h, host.length);
    this.#host = host;
    return this.#count;
  }

  /** Starts recording a host's labels; until `finish`, no host's labels are held. */
  begin(): void {
    this.#host = undefined;
    this.#count = 0;
  }

  /** Records the next label. */
  add(hash: number, end: number): void {
    if (this.#count === this.hashes.length) {
      const hashes = new Int32Array(this.#count * 2);
      const ends = new Int32Array(this.#count * 2);
      hashes.set(this.hashes);
      ends.set(this.ends);
      this.hashes = hashes;
      this.ends = ends;
    }
    this.hashes[this.#count] = hash;
    this.ends[this.#count++] = end;
  }

  /** Ends a recording: the labels recorded are those of `host`. */
  finish(host: string): void {
    this.#host = host;
  }
}

/** The labels of the host normalized or matched last. */
export const hostLabels = new HostLabels();
