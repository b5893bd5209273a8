/**
 * A trie of reversed domain labels (`com`, then `contoso` below it, then `www`), kept in flat
 * typed arrays so that the matcher's working set stays small: a lookup probes an open-addressing
 * table keyed by (parent node, label hash) instead of chasing a Map per node.
 *
 * Label hashes are computed right to left, times 31, in the same pass the matcher makes over a
 * host. A hit is not confirmed by comparing label characters: the matcher confirms every node it
 * takes rules from against the whole host, so a hash that collides can only lead it to rules it
 * then leaves. Only when two labels under one parent share a hash (found while building) does the
 * lookup compare characters, so that neither is shadowed.
 */

/** One step of the label hash. */
export const hashStep = (h: number, c: number): number => (Math.imul(h, 31) + c) | 0;

/** The label hash of a whole string, read right to left. */
export function labelHash(label: string): number {
  let h = 0;
  for (let i = label.length - 1; i >= 0; i--) h = hashStep(h, label.charCodeAt(i));
  return h;
}

const EMPTY = 0;

/** Nodes are numbered from 1 (the root); 0 means "none". */
export class LabelTrie {
  #parent = new Int32Array(64);
  #hash = new Int32Array(64);
  #child = new Int32Array(64);
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
    const old = { parent: this.#parent, hash: this.#hash, child: this.#child };
    const capacity = old.child.length * 2;
    this.#parent = new Int32Array(capacity);
    this.#hash = new Int32Array(capacity);
    this.#child = new Int32Array(capacity);
    this.#mask = capacity - 1;
    for (let i = 0; i < old.child.length; i++) {
      const child = old.child[i] ?? EMPTY;
      if (child === EMPTY) continue;
      let s = this.#slot(old.parent[i] ?? 0, old.hash[i] ?? 0);
      while (this.#child[s] !== EMPTY) s = (s + 1) & this.#mask;
      this.#parent[s] = old.parent[i] ?? 0;
      this.#hash[s] = old.hash[i] ?? 0;
      this.#child[s] = child;
    }
  }

  /** The child of `parent` for `label`, created when missing. */
  childFor(parent: number, label: string): number {
    const hash = labelHash(label);
    let s = this.#slot(parent, hash);
    for (; this.#child[s] !== EMPTY; s = (s + 1) & this.#mask) {
      if (this.#parent[s] !== parent || this.#hash[s] !== hash) continue;
      const child = this.#child[s] ?? EMPTY;
      if (this.#labels[child] === label) return child;
      this.#compare = true; // two labels under one parent share a hash
    }
    const id = this.#labels.length;
    this.#labels.push(label);
    this.#parent[s] = parent;
    this.#hash[s] = hash;
    this.#child[s] = id;
    if (++this.#used * 2 > this.#child.length) this.#grow();
    return id;
  }

  /**
   * The child of `parent` whose label hashes to `hash` (the label is `host[from, to)`), or 0.
   * The label is compared only when the trie holds labels whose hashes collide.
   */
  child(parent: number, hash: number, host: string, from: number, to: number): number {
    for (let s = this.#slot(parent, hash); ; s = (s + 1) & this.#mask) {
      const child = this.#child[s] ?? EMPTY;
      if (child === EMPTY) return EMPTY;
      if (this.#parent[s] !== parent || this.#hash[s] !== hash) continue;
      if (!this.#compare || sameLabel(this.#labels[child] ?? '', host, from, to)) return child;
    }
  }
}

function sameLabel(label: string, host: string, from: number, to: number): boolean {
  if (label.length !== to - from) return false;
  for (let i = 0; i < label.length; i++) if (label.charCodeAt(i) !== host.charCodeAt(from + i)) return false;
  return true;
}
