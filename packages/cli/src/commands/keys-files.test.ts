import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DataKey,
  KeyReleaseAuthority,
  keysDirOf,
  openEndpointKeys,
  serializeEnvelope,
  writePrivateFile,
} from '@tandem/core/crypto';
import { envelopeKeyProvider, envelopePathFor, writeTrustedAuthorities } from './keys-files.js';

describe('envelopeKeyProvider', () => {
  it('takes the version creation time as trusted time: a clock behind it is refused as set back', async () => {
    const state = mkdtempSync(join(tmpdir(), 'tandem-keys-files-'));
    const { device } = await openEndpointKeys(keysDirOf(state));
    const authority = KeyReleaseAuthority.generate();
    using dataKey = DataKey.generate();
    const envelope = await authority.seal({ dataKey, device: device.publicKey, imageId: 'erp', notAfter: 'P1D' });
    await writePrivateFile(envelopePathFor(state, 'erp'), serializeEnvelope(envelope));
    await writeTrustedAuthorities(state, [authority.publicKey]);
    const key = envelopeKeyProvider(state);
    const need = { imageId: 'erp', version: '1.0.0', keyId: dataKey.id };
    const released = await key({ ...need, createdAt: new Date().toISOString() });
    expect(released?.id).toBe(dataKey.id);
    released?.dispose();
    // Packed a day from now: this clock is a day behind signed metadata.
    await expect(key({ ...need, createdAt: new Date(Date.now() + 86_400_000).toISOString() })).rejects.toMatchObject({
      code: 'TANDEM_CLOCK_ROLLBACK',
    });
  });
});
