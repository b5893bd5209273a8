import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DataKey } from '../crypto/data-key.js';
import { requireDataKey } from '../crypto/release.js';
import { wipe } from '../crypto/secret.js';
import { InvalidInputError, KeyUnavailableError } from '../errors.js';
import type { LoadedWorkspace } from '../workspace/load.js';
import { parseManifest } from './manifest.js';
import type { EncryptedImageNeed } from './pull.js';
import { diskKeyFor } from './pull-encrypted.js';
import { VERSION_META_DIR } from './staging.js';

/**
 * The disk keys a start of an encrypted workspace needs, in memory only. Pass `diskKeys` to
 * `SessionManager.open` (or `adapter.start`), then dispose of it (or `using`): the keys are
 * zeroed.
 */
export interface DiskKeyRelease extends Disposable {
  /** The disk key per key id the VM's disks name (`spec.image.encryption.keyId`). */
  readonly diskKeys: ReadonlyMap<string, Uint8Array>;
  /** The image the envelope was opened for, and the version. */
  readonly imageId: string;
  readonly version: string;
  /** The data key's public id (never the key). */
  readonly dataKeyId: string;
}

/** What `tandem pull` recorded about an installed encrypted version (`.tandem/encryption.json`). */
interface InstalledRecord {
  readonly imageId?: unknown;
  readonly keyId?: unknown;
}

/**
 * Releases the disk key of an encrypted workspace for a start: asks `key` (the same provider a
 * pull takes, such as the CLI's envelope provider, which checks the envelope's signature, device,
 * image, version, lease and the trusted-time record) for the data key of the workspace's image
 * and version, checks that it is the key the installed image was encrypted with, derives the disk
 * key from it and wipes the data key. Returns `undefined` for a workspace that is not encrypted.
 * Every refusal is a typed error thrown before anything starts: KeyUnavailableError (no
 * envelope), AuthError (another device, image or version, or the wrong data key), LeaseError,
 * ClockRollbackError, IntegrityError.
 *
 * @example
 * ```ts
 * using keys = await releaseDiskKeys(loaded, envelopeKeyProvider(stateDir));
 * const session = await manager.open(loaded, { ...(keys ? { diskKeys: keys.diskKeys } : {}) });
 * await session.start();
 * ```
 */
export async function releaseDiskKeys(
  loaded: LoadedWorkspace,
  key: (need: EncryptedImageNeed) => Promise<DataKey | undefined>,
): Promise<DiskKeyRelease | undefined> {
  const encryption = loaded.workspace.spec.image.encryption;
  if (!encryption) return undefined;
  const version = loaded.workspace.metadata.version;
  const meta = join(dirname(loaded.file), VERSION_META_DIR);
  const record = await readRecord(join(meta, 'encryption.json'), loaded.file);
  const imageId = typeof record?.imageId === 'string' ? record.imageId : encryption.keyId;
  if (imageId !== encryption.keyId)
    throw new InvalidInputError(
      `${loaded.file} names key "${encryption.keyId}" for its image, but the installed version records image "${imageId}"; pull the workspace again.`,
      { details: { file: loaded.file, keyId: encryption.keyId, imageId } },
    );
  const keyId = typeof record?.keyId === 'string' ? record.keyId : '';
  const dataKey = await key({ imageId, version, keyId, createdAt: await packedAt(join(meta, 'manifest.zst')) });
  if (!dataKey)
    throw new KeyUnavailableError(
      `${loaded.workspace.metadata.name} ${version} is encrypted and no key was released for image "${imageId}"; nothing was started. Get an envelope for this device (tandem keys device show, then ask your administrator) and pass it with --envelope FILE.`,
      { details: { imageId, version } },
    );
  let diskKey: Buffer;
  try {
    if (keyId) requireDataKey(dataKey, keyId, `${loaded.workspace.metadata.name} ${version}`);
    diskKey = diskKeyFor(dataKey);
  } finally {
    dataKey.dispose();
  }
  const diskKeys = new Map<string, Uint8Array>([[encryption.keyId, diskKey]]);
  return {
    diskKeys,
    imageId,
    version,
    dataKeyId: dataKey.id,
    [Symbol.dispose]: () => {
      wipe(diskKey);
      diskKeys.clear();
    },
  };
}

async function readRecord(file: string, workspaceFile: string): Promise<InstalledRecord | undefined> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as InstalledRecord;
  } catch (err) {
    throw new InvalidInputError(`${file} (beside ${workspaceFile}) is damaged; pull the workspace again.`, {
      cause: err,
      details: { file },
    });
  }
}

/** The installed manifest's `createdAt` (signed repository metadata), or '' when there is none. */
async function packedAt(file: string): Promise<string> {
  const bytes = await readFile(file).catch(() => undefined);
  if (!bytes) return '';
  try {
    return parseManifest(bytes, file).createdAt;
  } catch {
    return '';
  }
}
