import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import { ConflictError, InvalidInputError } from '../errors.js';
import { readPrivateFile, writePrivateFile } from './private-files.js';
import { SecretKey, wipe } from './secret.js';

/** File name of the device keys inside the keys directory. */
export const DEVICE_KEY_FILE = 'device.json';
const PUBLIC_PREFIX = 'tandem-device1:';

/**
 * A device's public identity: what a key-release authority seals for. Printable, copyable; as
 * text it is `tandem-device1:` and the base64url of the X25519 and the Ed25519 public keys.
 */
export interface DevicePublicKey {
  /** SHA-256 of both public keys, first 32 hex digits. */
  readonly deviceId: string;
  /** X25519 public key (raw, base64url): data keys are sealed to it. */
  readonly sealingKey: string;
  /** Ed25519 public key (raw, base64url): the device signs its requests with it. */
  readonly signingKey: string;
}

const StoredSchema = z.strictObject({
  format: z.literal('tandem.device-keys/v1'),
  deviceId: z.string().regex(/^[0-9a-f]{32}$/),
  createdAt: z.iso.datetime(),
  x25519: z.strictObject({ public: z.base64url(), private: z.base64url() }),
  ed25519: z.strictObject({ public: z.base64url(), private: z.base64url() }),
});

/**
 * This endpoint's key pairs: X25519 to open envelopes sealed for it, Ed25519 to sign its requests
 * to a management server. Kept in the state directory (`keys/device.json`, mode 0600, directory
 * 0700, whatever the umask); the private halves are read only when used and never printed.
 *
 * @example
 * ```ts
 * const device = await DeviceKeys.open('/home/ana/.local/state/tandem/keys');
 * console.log(formatDevicePublicKey(device.publicKey));
 * ```
 */
export class DeviceKeys {
  readonly publicKey: DevicePublicKey;
  readonly createdAt: string;
  readonly #file: string;

  private constructor(file: string, publicKey: DevicePublicKey, createdAt: string) {
    this.#file = file;
    this.publicKey = publicKey;
    this.createdAt = createdAt;
  }

  /** The device's id. */
  get deviceId(): string {
    return this.publicKey.deviceId;
  }

  /** The keys in `keysDir`, created on first use. */
  static async open(keysDir: string, options: { clock?: Clock } = {}): Promise<DeviceKeys> {
    return (await DeviceKeys.load(keysDir)) ?? (await DeviceKeys.create(keysDir, options));
  }

  /** The keys in `keysDir`, or undefined when there are none yet. */
  static async load(keysDir: string): Promise<DeviceKeys | undefined> {
    const file = join(keysDir, DEVICE_KEY_FILE);
    const raw = await readPrivateFile(file);
    if (!raw) return undefined;
    const stored = parseStored(raw, file);
    wipe(raw);
    const publicKey = devicePublicKeyOf(stored.x25519.public, stored.ed25519.public);
    if (publicKey.deviceId !== stored.deviceId)
      throw new InvalidInputError(`${file} is damaged: its device id does not match its keys.`, { details: { file } });
    return new DeviceKeys(file, publicKey, stored.createdAt);
  }

  /** New keys in `keysDir`; refuses to replace existing ones unless `replace` is set. */
  static async create(keysDir: string, options: { clock?: Clock; replace?: boolean } = {}): Promise<DeviceKeys> {
    const file = join(keysDir, DEVICE_KEY_FILE);
    if (!options.replace && (await readPrivateFile(file).then((b) => (wipe(b), b !== undefined)))) {
      throw new ConflictError(
        `${file} holds this device's keys already; replacing them makes every envelope sealed for this device useless.`,
        { retryable: false, details: { file } },
      );
    }
    const x = generateKeyPairSync('x25519');
    const ed = generateKeyPairSync('ed25519');
    const xPub = rawPublic(x.publicKey);
    const edPub = rawPublic(ed.publicKey);
    const publicKey = devicePublicKeyOf(xPub, edPub);
    const createdAt = new Date((options.clock ?? systemClock).now()).toISOString();
    const text = JSON.stringify(
      {
        format: 'tandem.device-keys/v1',
        deviceId: publicKey.deviceId,
        createdAt,
        x25519: { public: xPub, private: rawPrivate(x.privateKey) },
        ed25519: { public: edPub, private: rawPrivate(ed.privateKey) },
      },
      null,
      2,
    );
    await writePrivateFile(file, text + '\n');
    return new DeviceKeys(file, publicKey, createdAt);
  }

  /** The X25519 private key, for as long as the caller holds it (dispose of it after use). */
  async sealingPrivateKey(): Promise<SecretKey> {
    return this.#privateKey('x25519');
  }

  /** The Ed25519 private key (dispose of it after use). */
  async signingPrivateKey(): Promise<SecretKey> {
    return this.#privateKey('ed25519');
  }

  async #privateKey(kind: 'x25519' | 'ed25519'): Promise<SecretKey> {
    const raw = await readPrivateFile(this.#file);
    if (!raw) throw new InvalidInputError(`${this.#file} was removed while in use.`, { details: { file: this.#file } });
    const stored = parseStored(raw, this.#file);
    wipe(raw);
    if (stored.deviceId !== this.deviceId)
      throw new ConflictError(`${this.#file} was replaced by other device keys while in use.`, {
        details: { file: this.#file },
      });
    const bytes = Buffer.from(stored[kind].private, 'base64url');
    try {
      return new SecretKey(bytes, `device ${kind} key`);
    } finally {
      wipe(bytes);
    }
  }

  /** Signs `data` with the device's Ed25519 key. */
  async sign(data: Uint8Array): Promise<Buffer> {
    using key = await this.signingPrivateKey();
    const object = key.use((d) => ed25519PrivateKeyObject(d, this.publicKey.signingKey));
    return sign(null, data, object);
  }

  toJSON(): DevicePublicKey {
    return this.publicKey;
  }

  [inspect.custom](): string {
    return `DeviceKeys [${this.deviceId}]`;
  }
}

function parseStored(raw: Buffer, file: string): z.infer<typeof StoredSchema> {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InvalidInputError(
      `${file} is not valid JSON; restore it or make new keys (tandem keys device init --replace).`,
      {
        details: { file },
      },
    );
  }
  const parsed = StoredSchema.safeParse(data);
  if (!parsed.success) {
    // Never echo the content: it holds private keys.
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(`${file} is not a Tandem device key file (${issue?.path.join('.') ?? ''}).`, {
      details: { file, path: issue?.path.join('.') },
    });
  }
  return parsed.data;
}

function rawPublic(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return String(jwk.x);
}

function rawPrivate(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return String(jwk.d);
}

/** A node:crypto Ed25519 private key from its raw bytes and public key (base64url). */
export function ed25519PrivateKeyObject(d: Uint8Array, x: string): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(d).toString('base64url'), x },
    format: 'jwk',
  });
}

/** A device's public identity from its two public keys (raw, base64url). */
export function devicePublicKeyOf(sealingKey: string, signingKey: string): DevicePublicKey {
  const x = Buffer.from(sealingKey, 'base64url');
  const ed = Buffer.from(signingKey, 'base64url');
  if (x.length !== 32 || ed.length !== 32)
    throw new InvalidInputError('A device public key holds a 32-byte X25519 key and a 32-byte Ed25519 key.');
  // Both must be keys node accepts (an Ed25519 key off the curve is refused here).
  createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: sealingKey }, format: 'jwk' });
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signingKey }, format: 'jwk' });
  const deviceId = createHash('sha256').update(x).update(ed).digest('hex').slice(0, 32);
  return { deviceId, sealingKey: x.toString('base64url'), signingKey: ed.toString('base64url') };
}

/** The text form of a device public key: `tandem-device1:` and 86 base64url characters. */
export function formatDevicePublicKey(key: DevicePublicKey): string {
  const bytes = Buffer.concat([Buffer.from(key.sealingKey, 'base64url'), Buffer.from(key.signingKey, 'base64url')]);
  return PUBLIC_PREFIX + bytes.toString('base64url');
}

/**
 * Parses the text form of a device public key ({@link formatDevicePublicKey}).
 *
 * @example
 * ```ts
 * const device = parseDevicePublicKey(process.argv[2]);
 * console.log(device.deviceId);
 * ```
 */
export function parseDevicePublicKey(text: string): DevicePublicKey {
  const t = text.trim();
  const bad = (cause?: unknown): InvalidInputError =>
    new InvalidInputError(
      `${JSON.stringify(t.slice(0, 100))} is not a device public key; expected "${PUBLIC_PREFIX}..." as \`tandem keys device show\` prints it.`,
      { cause, details: { expected: `${PUBLIC_PREFIX}<base64url>` } },
    );
  if (!t.startsWith(PUBLIC_PREFIX)) throw bad();
  const body = t.slice(PUBLIC_PREFIX.length);
  if (!/^[A-Za-z0-9_-]{86}$/.test(body)) throw bad();
  const bytes = Buffer.from(body, 'base64url');
  try {
    return devicePublicKeyOf(bytes.subarray(0, 32).toString('base64url'), bytes.subarray(32).toString('base64url'));
  } catch (err) {
    throw bad(err);
  }
}
