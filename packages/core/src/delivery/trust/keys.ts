import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { canonicalJson } from './canonical.js';

/** The four top-level roles of The Update Framework. */
export type RoleName = 'root' | 'targets' | 'snapshot' | 'timestamp';

/** Every role, in the order they are checked. */
export const ROLES: readonly RoleName[] = ['root', 'timestamp', 'snapshot', 'targets'];

/** A public key as TUF metadata lists it. */
export interface PublicKeyEntry {
  readonly keytype: 'ed25519';
  readonly scheme: 'ed25519';
  readonly keyval: { readonly public: string };
}

/** An Ed25519 key that can sign metadata. */
export interface SigningKey {
  /** SHA-256 of the canonical JSON of its public entry, hex (TUF's key id). */
  readonly keyid: string;
  readonly entry: PublicKeyEntry;
  readonly privateKey: KeyObject;
}

/** The TUF public entry of an Ed25519 key (`keyval.public` is the raw key, hex). */
export function publicEntryOf(key: KeyObject): PublicKeyEntry {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
    throw new InvalidInputError('Only Ed25519 keys can sign Tandem repository metadata.');
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: Buffer.from(jwk.x, 'base64url').toString('hex') } };
}

/** TUF's key id of a public entry. */
export function keyIdOf(entry: PublicKeyEntry): string {
  return createHash('sha256').update(canonicalJson(entry)).digest('hex');
}

/** The node:crypto public key of an entry. */
export function publicKeyOf(entry: PublicKeyEntry): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(entry.keyval.public, 'hex').toString('base64url') },
    format: 'jwk',
  });
}

/** Wraps a private key. */
export function signingKeyFrom(privateKey: KeyObject): SigningKey {
  const entry = publicEntryOf(createPublicKey(privateKey));
  return { keyid: keyIdOf(entry), entry, privateKey };
}

/** A new random Ed25519 key. */
export function generateSigningKey(): SigningKey {
  return signingKeyFrom(generateKeyPairSync('ed25519').privateKey);
}

/** The signing keys of a repository, by role. */
export type KeySet = Partial<Record<RoleName, SigningKey>>;

/**
 * Reads `<role>.pem` (PKCS#8) files from a keys directory. Roles without a file are absent.
 *
 * @example
 * ```ts
 * const keys = await loadKeys('/secure/tandem-keys');
 * ```
 */
export async function loadKeys(dir: string): Promise<KeySet> {
  const keys: KeySet = {};
  for (const role of ROLES) {
    let pem: string;
    try {
      pem = await readFile(join(dir, `${role}.pem`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    try {
      keys[role] = signingKeyFrom(createPrivateKey(pem));
    } catch (err) {
      throw new InvalidInputError(
        `${join(dir, `${role}.pem`)} is not an Ed25519 private key in PEM: ${(err as Error).message}.`,
        { cause: err },
      );
    }
  }
  return keys;
}

/** The key of `role`, or a NotFoundError saying which file is missing. */
export function requireKey(keys: KeySet, role: RoleName, dir = 'the keys directory'): SigningKey {
  const key = keys[role];
  if (!key) throw new NotFoundError(`No ${role} key: ${dir} needs ${role}.pem (made by \`tandem repo init\`).`);
  return key;
}

/**
 * Writes every key of a key set as `<role>.pem` (mode 0600, in a directory of mode 0700): what
 * {@link loadKeys} reads back. Keep the directory offline; the root key above all.
 *
 * @example
 * ```ts
 * const { keys, root } = await initRepository({ store: new DirectoryStore('repo') });
 * await saveKeys('/secure/tandem-keys', keys);
 * ```
 */
export async function saveKeys(dir: string, keys: KeySet): Promise<void> {
  for (const role of ROLES) {
    const key = keys[role];
    if (key) await saveKey(dir, role, key);
  }
}

/** Writes a key as `<role>.pem` (mode 0600); an existing key is kept as `<role>.<keyid>.retired.pem`. */
export async function saveKey(dir: string, role: RoleName, key: SigningKey, retired?: SigningKey): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (retired)
    await rename(join(dir, `${role}.pem`), join(dir, `${role}.${retired.keyid.slice(0, 16)}.retired.pem`)).catch(
      () => undefined,
    );
  const file = join(dir, `${role}.pem`);
  await writeFile(file, key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  await chmod(file, 0o600);
}
