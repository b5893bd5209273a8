import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SessionManager, TandemError, VirtualClock, loadWorkspaceFile, vmNameFor } from '@tandem/core';
import {
  DataKey,
  KeyReleaseAuthority,
  formatDevicePublicKey,
  openEndpointKeys,
  openEnvelope,
  type KeyEnvelope,
} from '@tandem/core/crypto';
import {
  DirectoryStore,
  diskKeyFor,
  initRepository,
  packWorkspace,
  pullWorkspace,
  pushPackage,
  releaseDiskKeys,
  type PullResult,
} from '@tandem/core/delivery';
import { MockAdapter } from '@tandem/core/mock';
import { memoryEncryptedImages } from './memory-images.js';

/** Options of {@link runEncryptionDemo}. */
export interface EncryptionDemoOptions {
  /** An empty directory to work in. */
  workDir: string;
  log: (line: string) => void;
}

/** What the demo did. */
export interface EncryptionDemoResult {
  readonly pulled: PullResult;
  readonly envelope: KeyEnvelope;
  /** The VM's state after the start with the released key. */
  readonly startedState: string;
  /** The error code of the attempt after the lease expired. */
  readonly refusedWith: string;
}

const DAY = 24 * 3600 * 1000;

/**
 * An encrypted workspace end to end on the mock hypervisor and a virtual clock: an administrator
 * makes a data key and packs encrypted; a key-release authority seals the key for this device
 * with a one-day offline lease; the endpoint pulls with the envelope (the image kept encrypted,
 * here in memory) and starts the VM with the key; two days later the same envelope is refused.
 */
export async function runEncryptionDemo(options: EncryptionDemoOptions): Promise<EncryptionDemoResult> {
  const { workDir, log } = options;
  const clock = new VirtualClock(Date.parse('2027-03-01T08:00:00Z'));

  // Administrator: a workspace with a raw disk image, packed encrypted, published.
  const ws = join(workDir, 'workspace');
  await mkdir(join(ws, 'images'), { recursive: true });
  const disk = Buffer.alloc(4 * 1024 * 1024);
  randomBytes(1024 * 1024).copy(disk);
  await writeFile(join(ws, 'images', 'disk.img'), disk);
  await writeFile(
    join(ws, 'tandem.workspace.yaml'),
    'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: legacy-erp, version: 3.2.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n',
  );
  using dataKey = DataKey.generate();
  log(`data key ${dataKey.id} for image legacy-erp (the id is public; the key never printed)`);
  const pkg = await packWorkspace({
    workspaceFile: join(ws, 'tandem.workspace.yaml'),
    out: join(workDir, 'legacy-erp-3.2.0.tandem'),
    encryption: { dataKey },
    clock,
  });
  log(`packed encrypted: ${pkg.chunks} chunks under keyed ids, AES-256-GCM, ${pkg.packageBytes} bytes`);
  const store = new DirectoryStore(join(workDir, 'repo'));
  const repo = await initRepository({ store, clock });
  await pushPackage({ package: pkg.path, store, keys: repo.keys, channels: ['stable'], clock });

  // Endpoint: its device keys; the authority seals the data key for it, with a one-day lease.
  const endpoint = await openEndpointKeys(join(workDir, 'state', 'keys'), { clock });
  log(`device ${endpoint.device.deviceId}: ${formatDevicePublicKey(endpoint.device.publicKey).slice(0, 40)}...`);
  const authority = KeyReleaseAuthority.generate({ clock });
  const envelope = await authority.seal({
    dataKey,
    device: endpoint.device.publicKey,
    imageId: 'legacy-erp',
    versions: '>=3.0.0 <4',
    notAfter: 'P1D',
  });
  const release = (): ReturnType<typeof openEnvelope> =>
    openEnvelope(envelope, {
      trustedAuthorities: [authority.publicKey],
      device: endpoint.device,
      trustedTime: endpoint.trustedTime,
      imageId: 'legacy-erp',
      version: '3.2.0',
      clock,
    });
  log('envelope sealed for this device: versions >=3.0.0 <4, offline until 2027-03-02T08:00:00Z');

  const images = memoryEncryptedImages();
  const pulled = await pullWorkspace({
    repo: join(workDir, 'repo'),
    workspace: 'legacy-erp',
    dir: join(workDir, 'install'),
    trustedRoot: repo.root,
    key: async () => (await release()).dataKey,
    encryptedImages: images,
    clock,
  });
  log(`pulled ${pulled.version}: ${pulled.chunksFetched} chunks fetched and decrypted in memory, image kept encrypted`);

  // Start the pulled workspace in a session on the mock hypervisor: releaseDiskKeys opens the
  // envelope (device, image, version, lease, trusted time) and hands the disk key over in memory.
  const adapter = new MockAdapter({ clock, hostMemoryMiB: 8192 });
  const loaded = await loadWorkspaceFile(pulled.workspaceFile);
  const manager = new SessionManager({ adapter, clock });
  const key = async (): Promise<DataKey> => (await release()).dataKey;
  {
    // The mock keeps no image: tell it which key opens this one, as a real encrypted disk would.
    using released = await release();
    const diskKey = diskKeyFor(released.dataKey);
    await adapter.diskEncryption.encrypt(
      { path: pulled.image, format: 'qcow2', encryption: { keyId: 'legacy-erp' } },
      diskKey,
    );
    diskKey.fill(0);
  }
  const start = async (): Promise<string> => {
    using keys = await releaseDiskKeys(loaded, key);
    const session = await manager.open(loaded, { ...(keys ? { diskKeys: keys.diskKeys } : {}) });
    try {
      await session.start();
      return session.state;
    } finally {
      await session.close();
    }
  };
  const startedState = await start();
  const vm = vmNameFor(loaded.workspace);
  log(`started: the session's VM ${vm} is ${startedState}`);
  await adapter.stop(vm, { force: true });

  // Two days later, still offline: the lease has expired and the key is not released.
  await clock.advance(2 * DAY);
  let refusedWith = 'none';
  try {
    await start();
  } catch (err) {
    if (!TandemError.is(err)) throw err;
    refusedWith = err.code;
    log(`two days later: refused (${err.code}): ${err.message}`);
  }
  log(`the VM is ${await adapter.state(vm)}`);
  return { pulled, envelope, startedState, refusedWith };
}
