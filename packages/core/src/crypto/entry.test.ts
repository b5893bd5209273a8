import { describe, expect, it } from 'vitest';
import { ChunkCipher, KeyReleaseAuthority, openEnvelope } from '@tandem/core/crypto';

describe('@tandem/core/crypto', () => {
  it('is a subpath entry of its own', () => {
    expect(typeof KeyReleaseAuthority).toBe('function');
    expect(typeof openEnvelope).toBe('function');
    expect(typeof ChunkCipher).toBe('function');
  });
});
