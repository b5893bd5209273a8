import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostLabels } from './host-labels.js';
import { labelHash } from './label-trie.js';

describe('HostLabels', () => {
  it('gives every label of a host its end and its hash, and keeps them for the same host', () => {
    const labels = new HostLabels();
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z0-9-]{0,7}$/), { minLength: 1, maxLength: 90 }), (parts) => {
        const host = parts.join('.');
        const count = labels.of(host);
        expect(count).toBe(parts.length);
        let end = -1;
        parts.forEach((part, k) => {
          end += part.length + 1;
          expect(labels.ends[k]).toBe(end);
          expect(labels.hashes[k]).toBe(labelHash(part));
        });
        expect(labels.of(host)).toBe(count);
      }),
    );
  });

  it('holds no labels between begin and finish', () => {
    const labels = new HostLabels();
    labels.of('a.b');
    labels.begin();
    labels.add(labelHash('x'), 1);
    // 'a.b' is asked for again: its labels are computed, not the half-recorded ones taken.
    expect(labels.of('a.b')).toBe(2);
    expect(labels.hashes[1]).toBe(labelHash('b'));
    labels.begin();
    labels.add(labelHash('x'), 1);
    labels.finish('x');
    expect(labels.of('x')).toBe(1);
  });
});
