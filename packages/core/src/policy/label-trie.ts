/**
 * A trie of reversed domain labels (`com`, then `contoso` below it, then `www`), kept in one flat
 * typed array so that the matcher's working set stays small: a lookup probes an open-addressing
 * table keyed by (parent node, label hash, label length) instead of chasing a Map per node.
 *
 * Label hashes are computed left to right, times 31, in the same pass that reads a URL's host
 * (see HostLabels). A hit is not confirmed by comparing label characters: the matcher confirms every node it
 * takes rules from against the whole host, so a hash that collides can only lead it to rules it
 * then leaves. Only when two labels under one parent share a hash and a length (found while
 * building) does the lookup compare characters, so that neither is shadowed.
 */

/** One step of the label hash. */
export const hashStep = (h: number, c: number): number => (Math.imul(h, 31) + c) | 0;

/** The label hash of a whole string, read left to right. */
export function labelHash(label: string): number {
  let h = 0;
  for (let i = 0; i < label.length; i++) h = hashStep(h, label.charCodeAt(i));
  return h;
}

const EMPTY = 0;
// A slot is four ints side by side (parent, label hash, child, label length), so that a probe
// reads one cache line instead of one per array.
const SLOT = 4;

/** Nodes are numbered from 1 (the root); 0 means "none". */
export class LabelTrie {
  #slots = new Int32Array(64 * SLOT);
  #mask = 63;
  #used = 0;
  #labels: string[] = ['', ''];
  #compare = false;

  /** The root node. */
  static readonly ROOT = 1;

  /** Number of nodes, the root included. */
  get size(): number {
    return this.#labels.length - 1;
  }

  #slot(parent: number, hash: number): number {
    return (Math.imul(parent, 0x9e3779b1) ^ hash) & this.#mask;
  }

  #grow(): void {
    const old = this.#slots;
    const capacity = ((this.#mask + 1) * 2) | 0;
    this.#slots = new Int32Array(capacity * SLOT);
    this.#mask = capacity - 1;
    for (let i = 0; i < old.length; i += SLOT) {
      if ((old[i + 2] ?? EMPTY) === EMPTY) continue;
      let s = this.#slot(old[i] ?? 0, old[i + 1] ?? 0);
      while (this.#slots[s * SLOT + 2] !== EMPTY) s = (s + 1) & this.#mask;
      this.#slots.set(old.subarray(i, i + SLOT), s * SLOT);
    }
  }

  /** The child of `parent` for `label`, created when missing. */
  childFor(parent: number, label: string): number {
    const hash = labelHash(label);
    const slots = this.#slots;
    let s = this.#slot(parent, hash);
    for (; slots[s * SLOT + 2] !== EMPTY; s = (s + 1) & this.#mask) {
      const at = s * SLOT;
      if (slots[at] !== parent || slots[at + 1] !== hash || slots[at + 3] !== label.length) continue;
      const child = slots[at + 2] ?? EMPTY;
      if (this.#labels[child] === label) return child;
      this.#compare = true; // two labels under one parent share a hash and a length
    }
    const id = this.#labels.length;
    this.#labels.push(label);
    slots[s * SLOT] = parent;
    slots[s * SLOT + 1] = hash;
    slots[s * SLOT + 2] = id;
    slots[s * SLOT + 3] = label.length;
    if (++this.#used * 2 > this.#mask + 1) this.#grow();
    return id;
  }

  /**
   * The child of `parent` whose label hashes to `hash` (the label is `host[from, to)`), or 0.
   * The label is compared only when the trie holds labels whose hashes collide.
   */
  child(parent: number, hash: number, host: string, from: number, to: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let s = this.#slot(parent, hash); ; s = (s + 1) & mask) {
      const at = s * SLOT;
      const child = slots[at + 2] ?? EMPTY;
      if (child === EMPTY) return EMPTY;
      if (slots[at] !== parent || slots[at + 1] !== hash || slots[at + 3] !== to - from) continue;
      if (!this.#compare || sameLabel(this.#labels[child] ?? '', host, from, to)) return child;
    }
  }
}

function sameLabel(label: string, host: string, from: number, to: number): boolean {
  if (label.length !== to - from) return false;
  for (let i = 0; i < label.length; i++) if (label.charCodeAt(i) !== host.charCodeAt(from + i)) return false;
  return true;
}
