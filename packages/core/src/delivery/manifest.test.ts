import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.js';
import { DEFAULT_CHUNKING } from './fastcdc.js';
import { parseManifest, serializeManifest, sha256Hex, type ChunkRef, type ImageManifest } from './manifest.js';

function manifestOf(lengths: number[], zeroEvery = 0): ImageManifest {
  const chunks: ChunkRef[] = [];
  const locations: Record<string, [number, number, number]> = {};
  let offset = 0;
  const packEnd = [0, 0];
  lengths.forEach((length, i) => {
    const zero = zeroEvery > 0 && i % zeroEvery === 0;
    const id = zero ? sha256Hex(Buffer.alloc(length)) : randomBytes(32).toString('hex');
    chunks.push(zero ? { id, offset, length, zero: true } : { id, offset, length });
    if (!zero) {
      // Packs hold chunks back to back, compressed to about their length.
      const size = length + (i % 7);
      locations[id] = [i % 2, packEnd[i % 2]!, size];
      packEnd[i % 2]! += size;
    }
    offset += length;
  });
  const text = 'apiVersion: tandem/v1\n';
  return {
    format: 'tandem.manifest/v1',
    workspace: {
      name: 'erp',
      version: '1.0.0',
      file: { name: 'tandem.workspace.yaml', text, sha256: sha256Hex(text) },
    },
    image: { path: 'images/disk.qcow2', format: 'qcow2', size: offset, sha256: 'ab'.repeat(32) },
    chunking: DEFAULT_CHUNKING,
    compression: 'zstd',
    createdAt: '2026-01-01T00:00:00.000Z',
    chunks,
    storage: { packs: ['packs/aa/a.pack', 'packs/bb/b.pack'], locations },
  };
}

describe('manifest', () => {
  it('round-trips through its compact compressed form', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: DEFAULT_CHUNKING.maxSize }), { maxLength: 300 }),
        fc.integer({ min: 0, max: 5 }),
        (lengths, zeroEvery) => {
          const m = manifestOf(lengths, zeroEvery);
          expect(parseManifest(serializeManifest(m), 'test')).toEqual(m);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('costs little more than the 32-byte digest per chunk', () => {
    const m = manifestOf(Array.from({ length: 10_000 }, (_, i) => 40_000 + ((i * 7919) % 50_000)));
    expect(serializeManifest(m).length / 10_000).toBeLessThan(38);
  });

  it('refuses paths that leave their directory', () => {
    const m = manifestOf([100, 200]);
    for (const path of ['../etc/passwd', '/abs', 'a/../../b', 'c:\\x']) {
      expect(() => parseManifest(serializeManifest({ ...m, image: { ...m.image, path } }), 'evil')).toThrow(/leaves/);
    }
    expect(() =>
      parseManifest(serializeManifest({ ...m, storage: { ...m.storage, packs: ['../../x', 'ok'] } }), 'evil'),
    ).toThrow(InvalidInputError);
  });

  it('refuses chunks that do not tile the image, and a workspace file that does not match its digest', () => {
    const m = manifestOf([100, 200]);
    expect(() => parseManifest(serializeManifest({ ...m, image: { ...m.image, size: 301 } }), 'bad')).toThrow(
      /cover 300 bytes/,
    );
    const file = { ...m.workspace.file, text: 'changed' };
    expect(() => parseManifest(serializeManifest({ ...m, workspace: { ...m.workspace, file } }), 'bad')).toThrow(
      /SHA-256/,
    );
    expect(() => parseManifest(Buffer.from('{"format":"nope"}'), 'bad')).toThrow(/not a Tandem manifest/);
  });
});
