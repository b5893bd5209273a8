// releaseDiskKeys: the API side of starting an encrypted workspace (issue 11). The envelope is
// opened through the same provider a pull takes, the data key checked against the installed
// version's record, and the disk key handed to the session's start (the mock adapter refuses a
// missing or wrong key, as libvirt does); refusals happen before anything starts.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { KeyReleaseAuthority } from '../crypto/authority.js';
import { DataKey } from '../crypto/data-key.js';
import { openEndpointKeys, openEnvelope } from '../crypto/release.js';
import { SessionManager } from '../session/manager.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { loadWorkspaceFile } from '../workspace/load.js';
import type { EncryptedImageNeed } from './pull.js';
import { diskKeyFor } from './pull-encrypted.js';
import { releaseDiskKeys } from './start-keys.js';

const T0 = Date.parse('2027-03-01T08:00:00Z');
const DAY = 24 * 3600 * 1000;

/** An installed encrypted version as pullWorkspace leaves it (pull-encrypted.ts). */
async function installedVersion(dir: string, keyId: string): Promise<string> {
  await mkdir(join(dir, '.tandem'), { recursive: true });
  await writeFile(
    join(dir, '.tandem', 'encryption.json'),
    JSON.stringify({ imageId: 'erp', keyId, format: 'qcow2', image: 'disk.qcow2' }),
  );
  const file = join(dir, 'tandem.workspace.yaml');
  await writeFile(
    file,
    'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 3.2.0 }\nspec:\n  image: { source: ./disk.qcow2, format: qcow2, encryption: { keyId: erp } }\n  hardware: { memory: { fixedMiB: 512 } }\n',
  );
  return file;
}

describe('releaseDiskKeys', () => {
  it('releases the disk key through the envelope, the session starts with it, and it is wiped after', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tandem-start-keys-'));
    const clock = new VirtualClock(T0);
    using dataKey = DataKey.generate();
    const authority = KeyReleaseAuthority.generate({ clock });
    const endpoint = await openEndpointKeys(join(root, 'keys'), { clock });
    const envelope = await authority.seal({
      dataKey,
      device: endpoint.device.publicKey,
      imageId: 'erp',
      versions: '>=3.0.0 <4',
      notAfter: 'P1D',
    });
    const asked: EncryptedImageNeed[] = [];
    const provider = async (need: EncryptedImageNeed): Promise<DataKey> => {
      asked.push(need);
      return (
        await openEnvelope(envelope, {
          trustedAuthorities: [authority.publicKey],
          device: endpoint.device,
          trustedTime: endpoint.trustedTime,
          imageId: need.imageId,
          version: need.version,
          clock,
        })
      ).dataKey;
    };
    const loaded = await loadWorkspaceFile(await installedVersion(join(root, 'v'), dataKey.id));
    const adapter = new MockAdapter({ clock, hostMemoryMiB: 8192 });
    const expected = diskKeyFor(dataKey);
    await adapter.diskEncryption.encrypt(
      { path: join(root, 'v', 'disk.qcow2'), format: 'qcow2', encryption: { keyId: 'erp' } },
      expected,
    );

    const release = await releaseDiskKeys(loaded, provider);
    expect(asked).toEqual([expect.objectContaining({ imageId: 'erp', version: '3.2.0', keyId: dataKey.id })]);
    expect(release).toMatchObject({ imageId: 'erp', version: '3.2.0', dataKeyId: dataKey.id });
    const key = release!.diskKeys.get('erp')!;
    expect(Buffer.from(key).equals(expected)).toBe(true);
    const manager = new SessionManager({ adapter });
    const session = await manager.open(loaded, { diskKeys: release!.diskKeys });
    await session.start();
    expect(session.state).toBe('running');
    await session.stop({ force: true });
    release![Symbol.dispose]();
    expect(key.every((b) => b === 0)).toBe(true);
    // A started session without the key is refused by the adapter, as on libvirt.
    await expect(session.start()).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await session.close();

    // The installed image was encrypted under another key: refused before any start.
    const rekeyed = await loadWorkspaceFile(await installedVersion(join(root, 'w'), 'a'.repeat(32)));
    await expect(releaseDiskKeys(rekeyed, provider)).rejects.toMatchObject({
      code: 'TANDEM_AUTH',
      details: expect.objectContaining({ reason: 'wrong-data-key' }),
    });
    // A provider that has no key: a typed error saying what to do.
    await expect(releaseDiskKeys(loaded, async () => undefined)).rejects.toMatchObject({
      code: 'TANDEM_KEY_UNAVAILABLE',
    });
    // The lease runs out: the same envelope no longer releases the key.
    await clock.advance(2 * DAY);
    await expect(releaseDiskKeys(loaded, provider)).rejects.toMatchObject({ code: 'TANDEM_LEASE' });
  });

  it('returns nothing for a workspace that is not encrypted, without asking for a key', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tandem-start-keys-'));
    const file = join(root, 'ws.yaml');
    await writeFile(
      file,
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 1.0.0 }\nspec:\n  image: { source: ./d.qcow2, format: qcow2 }\n  hardware: { memory: { fixedMiB: 512 } }\n',
    );
    let asked = 0;
    expect(
      await releaseDiskKeys(await loadWorkspaceFile(file), async () => {
        asked++;
        return undefined;
      }),
    ).toBeUndefined();
    expect(asked).toBe(0);
  });
});
