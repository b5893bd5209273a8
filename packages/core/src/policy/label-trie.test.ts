import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LabelTrie, labelHash } from './label-trie.js';

describe('LabelTrie', () => {
  it('finds every label it holds, through growth, and nothing else', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,6}$/), { minLength: 1, maxLength: 300 }),
        fc.stringMatching(/^[a-z0-9-]{1,6}$/),
        (labels, other) => {
          const trie = new LabelTrie();
          const ids = labels.map((l) => trie.childFor(LabelTrie.ROOT, l));
          const deeper = labels.map((l, i) => trie.childFor(ids[i] ?? 0, `${l}x`));
          expect(new Set([...ids, ...deeper]).size).toBe(labels.length * 2);
          expect(trie.size).toBe(1 + labels.length * 2);
          labels.forEach((l, i) => {
            expect(trie.childFor(LabelTrie.ROOT, l)).toBe(ids[i]);
            expect(trie.child(LabelTrie.ROOT, labelHash(l), `a.${l}`, 2, 2 + l.length)).toBe(ids[i]);
            expect(trie.child(ids[i] ?? 0, labelHash(`${l}x`), `${l}x`, 0, l.length + 1)).toBe(deeper[i]);
          });
          if (!labels.includes(other) && !labels.some((l) => labelHash(l) === labelHash(other))) {
            expect(trie.child(LabelTrie.ROOT, labelHash(other), other, 0, other.length)).toBe(0);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('keeps labels whose hashes collide apart', () => {
    expect(labelHash('ac0')).toBe(labelHash('aan'));
    const trie = new LabelTrie();
    const a = trie.childFor(LabelTrie.ROOT, 'ac0');
    const b = trie.childFor(LabelTrie.ROOT, 'aan');
    expect(a).not.toBe(b);
    expect(trie.child(LabelTrie.ROOT, labelHash('ac0'), 'ac0', 0, 3)).toBe(a);
    expect(trie.child(LabelTrie.ROOT, labelHash('aan'), 'aan', 0, 3)).toBe(b);
  });
});
