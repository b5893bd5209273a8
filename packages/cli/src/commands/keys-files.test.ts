import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryStore, VirtualClock, initRepository, packWorkspace, pullWorkspace, pushPackage } from '@tandem/core';
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

  it("takes the repository's signed timestamp (TUF timestamp role) as trusted time: a clock behind it is refused", async () => {
    const root = mkdtempSync(join(tmpdir(), 'tandem-keys-files-'));
    const state = join(root, 'state');
    const { device } = await openEndpointKeys(keysDirOf(state));
    const authority = KeyReleaseAuthority.generate();
    await writeTrustedAuthorities(state, [authority.publicKey]);
    using dataKey = DataKey.generate();
    const envelope = await authority.seal({ dataKey, device: device.publicKey, imageId: 'erp', notAfter: 'P30D' });
    await writePrivateFile(envelopePathFor(state, 'erp'), serializeEnvelope(envelope));
    // Packed now (its creation time is now); published by a repository whose clock is two days on.
    mkdirSync(join(root, 'ws'), { recursive: true });
    writeFileSync(join(root, 'ws', 'disk.img'), Buffer.alloc(1 << 20, 7));
    writeFileSync(
      join(root, 'ws', 'ws.yaml'),
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n',
    );
    const pkg = await packWorkspace({
      workspaceFile: join(root, 'ws', 'ws.yaml'),
      out: join(root, 'erp.tandem'),
      encryption: { dataKey },
    });
    const publish = async (name: string, clock?: VirtualClock): Promise<{ dir: string; root: Uint8Array }> => {
      const dir = join(root, name);
      const store = new DirectoryStore(dir);
      const repo = await initRepository({ store, ...(clock ? { clock } : {}) });
      await pushPackage({
        package: pkg.path,
        store,
        keys: repo.keys,
        channels: ['stable'],
        ...(clock ? { clock } : {}),
      });
      return { dir, root: repo.root };
    };
    const pull = (repo: { dir: string; root: Uint8Array }, dir: string): Promise<unknown> =>
      pullWorkspace({ repo: repo.dir, workspace: 'erp', dir, trustedRoot: repo.root, key: envelopeKeyProvider(state) });
    // A repository signed now: the key is released (the pull then stops for want of an
    // at-rest store, which this test does not give).
    await expect(pull(await publish('repo-now'), join(root, 'i1'))).rejects.toMatchObject({
      code: 'TANDEM_UNSUPPORTED',
    });
    const ahead = await publish('repo-ahead', new VirtualClock(Date.now() + 2 * 86_400_000));
    await expect(pull(ahead, join(root, 'i2'))).rejects.toMatchObject({ code: 'TANDEM_CLOCK_ROLLBACK' });
    // The record stays: even the repository signed now is refused on this clock from now on.
    await expect(pull(await publish('repo-now-2'), join(root, 'i3'))).rejects.toMatchObject({
      code: 'TANDEM_CLOCK_ROLLBACK',
    });
  });
});
