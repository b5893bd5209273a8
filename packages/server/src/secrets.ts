import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { IntegrityError, signingKeyFrom, type Clock } from '@tandem/core';
import {
  DataKey,
  KeyReleaseAuthority,
  SecretKey,
  ensurePrivateDir,
  readPrivateFile,
  wipe,
  writePrivateFile,
} from '@tandem/core/crypto';

/** File names inside the server's keys directory. */
export const AUTHORITY_KEY_FILE = 'authority.pem';
export const MASTER_KEY_FILE = 'master.key';

const SEALED_PREFIX = 'tandem-sealed-key1:';

/**
 * The server's own secrets: the key-release authority's Ed25519 key (it signs envelopes) and the
 * master key that keeps every workspace's data key sealed at rest (AES-256-GCM, bound to the
 * workspace's name). Every server process of a deployment uses the same two files.
 *
 * @example
 * ```ts
 * const secrets = await ServerSecrets.open('/var/lib/tandem-server/keys');
 * const sealed = secrets.sealDataKey('legacy-erp', dataKey);
 * ```
 */
export class ServerSecrets {
  readonly authority: KeyReleaseAuthority;
  readonly #master: SecretKey;

  constructor(authority: KeyReleaseAuthority, master: SecretKey) {
    this.authority = authority;
    this.#master = master;
  }

  /** The secrets in `dir` (0700), made on first use (files 0600). */
  static async open(dir: string, options: { clock?: Clock } = {}): Promise<ServerSecrets> {
    await ensurePrivateDir(dir);
    const pemFile = join(dir, AUTHORITY_KEY_FILE);
    let pem = await readPrivateFile(pemFile);
    if (!pem) {
      const fresh = KeyReleaseAuthority.generate();
      await writePrivateFile(pemFile, String(fresh.signingKey.privateKey.export({ format: 'pem', type: 'pkcs8' })));
      pem = await readPrivateFile(pemFile);
    }
    const key = signingKeyFrom(createPrivateKey(pem ?? ''));
    if (pem) wipe(pem);
    const masterFile = join(dir, MASTER_KEY_FILE);
    let raw = await readPrivateFile(masterFile);
    if (!raw) {
      await writePrivateFile(masterFile, randomBytes(32).toString('base64url') + '\n');
      raw = await readPrivateFile(masterFile);
    }
    const bytes = Buffer.from((raw ?? Buffer.alloc(0)).toString('utf8').trim(), 'base64url');
    if (raw) wipe(raw);
    if (bytes.length !== 32)
      throw new IntegrityError(`${masterFile} is not a 32-byte master key; restore it from your backup.`, {
        details: { file: masterFile },
      });
    const master = new SecretKey(bytes, 'server master key');
    wipe(bytes);
    return new ServerSecrets(new KeyReleaseAuthority(key, options.clock ? { clock: options.clock } : {}), master);
  }

  /** In memory only (tests, the demo's first seconds). */
  static generate(options: { clock?: Clock } = {}): ServerSecrets {
    const bytes = randomBytes(32);
    const master = new SecretKey(bytes, 'server master key');
    wipe(bytes);
    return new ServerSecrets(KeyReleaseAuthority.generate(options), master);
  }

  /** A data key sealed under the master key, bound to `workspace` (what WorkspaceKeyRecord keeps). */
  sealDataKey(workspace: string, dataKey: DataKey): string {
    const iv = randomBytes(12);
    const out = this.#master.use((k) => {
      const c = createCipheriv('aes-256-gcm', k, iv);
      c.setAAD(Buffer.from(`tandem workspace key v1\n${workspace}`, 'utf8'));
      const ct = dataKey.use((d) => Buffer.concat([c.update(d), c.final()]));
      return Buffer.concat([iv, ct, c.getAuthTag()]);
    });
    return SEALED_PREFIX + out.toString('base64url');
  }

  /** Opens a sealed data key; IntegrityError when it was altered or is another workspace's. */
  openDataKey(workspace: string, sealed: string): DataKey {
    if (!sealed.startsWith(SEALED_PREFIX))
      throw new IntegrityError(`The stored key of ${workspace} is not a sealed data key.`);
    const buf = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
    return this.#master.use((k) => {
      let bytes: Buffer;
      try {
        const d = createDecipheriv('aes-256-gcm', k, buf.subarray(0, 12));
        d.setAAD(Buffer.from(`tandem workspace key v1\n${workspace}`, 'utf8'));
        d.setAuthTag(buf.subarray(buf.length - 16));
        bytes = Buffer.concat([d.update(buf.subarray(12, buf.length - 16)), d.final()]);
      } catch (cause) {
        throw new IntegrityError(
          `The stored key of ${workspace} does not open with this server's master key (altered, or another deployment's).`,
          { cause },
        );
      }
      try {
        return new DataKey(bytes);
      } finally {
        wipe(bytes);
      }
    });
  }
}
