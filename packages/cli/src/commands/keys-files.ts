// The files `tandem keys` reads and writes: data-key files (the administrator's), the
// authority's signing key, the endpoint's trusted authorities and its envelopes.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  InvalidInputError,
  releaseDiskKeys,
  type DiskKeyRelease,
  NotFoundError,
  KeyUnavailableError,
  type EncryptedImageNeed,
  type EncryptedImageStore,
  type PublicKeyEntry,
} from '@tandem/core';
import {
  DataKey,
  keysDirOf,
  openEndpointKeys,
  openEnvelope,
  parseEnvelope,
  readPrivateFile,
  wipe,
  writePrivateFile,
  type KeyEnvelope,
} from '@tandem/core/crypto';
import type { SessionRecord } from '../state.js';

/** A data-key file as `tandem keys image new` writes it (mode 0600). */
interface DataKeyFile {
  format: 'tandem.data-key/v1';
  imageId: string;
  keyId: string;
  key: string;
}

/** Writes a new data key for `imageId` to `file` (0600); returns its public id. */
export async function writeDataKeyFile(file: string, imageId: string, key: DataKey): Promise<void> {
  const body: DataKeyFile = {
    format: 'tandem.data-key/v1',
    imageId,
    keyId: key.id,
    key: key.use((b) => b.toString('base64url')),
  };
  await writePrivateFile(file, JSON.stringify(body, null, 2) + '\n');
}

/** Reads a data-key file; the caller disposes of the key. */
export async function readDataKeyFile(file: string): Promise<{ imageId: string; key: DataKey }> {
  const raw = await readPrivateFile(file);
  if (!raw) throw new NotFoundError(`Data key file ${file} does not exist; make one with: tandem keys image new.`);
  let data: Partial<DataKeyFile>;
  try {
    data = JSON.parse(raw.toString('utf8')) as Partial<DataKeyFile>;
  } catch {
    data = {};
  } finally {
    wipe(raw);
  }
  if (data.format !== 'tandem.data-key/v1' || typeof data.key !== 'string' || typeof data.imageId !== 'string')
    throw new InvalidInputError(`${file} is not a Tandem data key file (made by tandem keys image new).`, {
      details: { file },
    });
  const bytes = Buffer.from(data.key, 'base64url');
  try {
    const key = new DataKey(bytes);
    if (key.id !== data.keyId) {
      key.dispose();
      throw new InvalidInputError(`${file} is damaged: its key does not match its key id.`, { details: { file } });
    }
    return { imageId: data.imageId, key };
  } finally {
    wipe(bytes);
  }
}

/** The Ed25519 public entry of a PEM key file (private or public). */
export async function readAuthorityPublic(file: string): Promise<PublicKeyEntry> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(`Authority key file ${file} does not exist.`);
    throw err;
  });
  try {
    const key = text.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(text)) : createPublicKey(text);
    const jwk = key.export({ format: 'jwk' });
    if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('not Ed25519');
    return {
      keytype: 'ed25519',
      scheme: 'ed25519',
      keyval: { public: Buffer.from(jwk.x, 'base64url').toString('hex') },
    };
  } catch (err) {
    throw new InvalidInputError(`${file} is not an Ed25519 key in PEM (made by tandem keys authority new).`, {
      cause: err,
      details: { file },
    });
  }
}

/** Where the endpoint keeps what `tandem keys trust` added. */
export function trustedAuthoritiesFile(stateDir: string): string {
  return join(keysDirOf(stateDir), 'authorities.json');
}

/** The authorities this endpoint trusts (none until `tandem keys trust`). */
export async function readTrustedAuthorities(stateDir: string): Promise<PublicKeyEntry[]> {
  const raw = await readPrivateFile(trustedAuthoritiesFile(stateDir));
  if (!raw) return [];
  const data = JSON.parse(raw.toString('utf8')) as { authorities?: PublicKeyEntry[] };
  return data.authorities ?? [];
}

/** Saves the trusted authorities. */
export async function writeTrustedAuthorities(stateDir: string, authorities: PublicKeyEntry[]): Promise<void> {
  await writePrivateFile(
    trustedAuthoritiesFile(stateDir),
    JSON.stringify({ format: 'tandem.trusted-authorities/v1', authorities }, null, 2) + '\n',
  );
}

/** Where an image's envelope is looked for in the state directory. */
export function envelopePathFor(stateDir: string, imageId: string): string {
  return join(stateDir, 'envelopes', `${imageId}.envelope`);
}

/**
 * The envelope for `imageId`: `explicit` (--envelope FILE) when given, else the one in the
 * state directory; KeyUnavailableError when there is none.
 */
export async function findEnvelope(
  stateDir: string,
  imageId: string,
  explicit?: string,
): Promise<{ envelope: KeyEnvelope; source: string }> {
  const source = explicit ?? envelopePathFor(stateDir, imageId);
  const raw = await readFile(source).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!raw)
    throw new KeyUnavailableError(
      explicit
        ? `Envelope file ${explicit} does not exist.`
        : `There is no envelope for image "${imageId}" (looked in ${source}). Send this device's key (tandem keys device show) to your administrator, who seals one (tandem keys seal --image ${imageId} ...), then pass it with --envelope FILE or copy it there.`,
      { details: { imageId, source } },
    );
  return { envelope: parseEnvelope(raw, source), source };
}

/**
 * The data key of an encrypted workspace for `pull` and `up`: the envelope (`explicit`, or the
 * one in the state directory) opened with this device's keys against the trusted authorities.
 * Every refusal is the typed error of {@link openEnvelope}.
 */
export function envelopeKeyProvider(
  stateDir: string,
  explicit?: string,
): (need: EncryptedImageNeed) => Promise<DataKey | undefined> {
  return async (need) => {
    const { envelope, source } = await findEnvelope(stateDir, need.imageId, explicit);
    const trustedAuthorities = await readTrustedAuthorities(stateDir);
    if (trustedAuthorities.length === 0)
      throw new KeyUnavailableError(
        `This device trusts no key-release authority yet, so ${source} cannot be checked. Trust your authority's public key: tandem keys trust FILE.pub.`,
        { details: { source } },
      );
    const { device, trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
    // The version's creation time is signed repository metadata: a trusted time as well.
    const packedAt = Date.parse(need.createdAt);
    if (Number.isFinite(packedAt)) await trustedTime.observe(packedAt, 'repository');
    // So is the time the repository's timestamp metadata was signed (TUF timestamp role).
    const signedAt = need.repositoryTime !== undefined ? Date.parse(need.repositoryTime) : NaN;
    if (Number.isFinite(signedAt)) await trustedTime.observe(signedAt, 'repository');
    const released = await openEnvelope(envelope, {
      trustedAuthorities,
      device,
      trustedTime,
      imageId: need.imageId,
      version: need.version,
      source,
    });
    return released.dataKey;
  };
}

/**
 * Where `pull` keeps an encrypted workspace's image: LUKS-encrypted qcow2 (libvirt/QEMU, through
 * qemu-nbd), loaded only when a pull meets an encrypted workspace.
 */
export function atRestImages(luksIterTimeMs?: number): EncryptedImageStore {
  const load = async (): Promise<EncryptedImageStore> =>
    (await import('@tandem/adapter-libvirt')).libvirtEncryptedImages(
      luksIterTimeMs !== undefined ? { luksIterTimeMs } : {},
    );
  return {
    format: 'qcow2',
    create: async (path, size, key) => (await load()).create(path, size, key),
    open: async (path, key, options) => (await load()).open(path, key, options),
  };
}

/**
 * The disk keys for resuming a recorded session of an encrypted workspace (its envelope checked
 * again, lease and trusted time included); undefined for a workspace that is not encrypted.
 */
export function sessionDiskKeys(
  stateDir: string,
  record: Pick<SessionRecord, 'spec' | 'file'>,
  explicit?: string,
): Promise<DiskKeyRelease | undefined> {
  return releaseDiskKeys(
    { workspace: record.spec, file: record.file, baseDir: dirname(record.file) },
    envelopeKeyProvider(stateDir, explicit),
  );
}
