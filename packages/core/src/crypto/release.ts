import { timingSafeEqual, verify } from 'node:crypto';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { AuthError, IntegrityError, InvalidInputError, LeaseError } from '../errors.js';
import { keyIdOf, publicKeyOf, type PublicKeyEntry } from '../delivery/trust/keys.js';
import { DataKey } from './data-key.js';
import { DeviceKeys } from './device-key.js';
import { readGrant, type KeyEnvelope, type KeyGrant } from './envelope.js';
import { hpkeOpen } from './hpke.js';
import { ensurePrivateDir } from './private-files.js';
import { wipe } from './secret.js';
import { TrustedTime } from './trusted-time.js';
import { versionInRange } from './versions.js';

/** What {@link openEnvelope} needs to decide. */
export interface OpenEnvelopeOptions {
  /** The authorities this endpoint trusts. */
  readonly trustedAuthorities: readonly PublicKeyEntry[];
  readonly device: DeviceKeys;
  /** The trusted-time record; the envelope's issued-at time moves it forward. */
  readonly trustedTime: TrustedTime;
  /** The image (workspace name) and version the key is wanted for. */
  readonly imageId: string;
  readonly version: string;
  /** Names the envelope in messages (a file path); default `the envelope`. */
  readonly source?: string;
  readonly clock?: Clock;
}

/** A data key released by a verified envelope. Dispose of it (or `using`) when done. */
export interface ReleasedKey extends Disposable {
  readonly dataKey: DataKey;
  readonly grant: KeyGrant;
}

/**
 * The endpoint's side of key release. Accepts an envelope only when its signature checks out
 * against a trusted authority key, it names this device, this image and a range holding this
 * version, the clock is not set back past the trusted-time record, and the lease is current;
 * only then is the data key unsealed. Every refusal is a typed error and unseals nothing:
 * AuthError (untrusted signer, another device, image or version, a key that is not the image's),
 * IntegrityError (a bad signature: one byte changed), ClockRollbackError, LeaseError
 * (`expired`, `not-yet-valid`).
 *
 * @example
 * ```ts
 * using released = await openEnvelope(envelope, { trustedAuthorities: [authorityKey], device, trustedTime, imageId: 'legacy-erp', version: '3.2.0' });
 * released.dataKey.use((key) => decrypt(key));
 * ```
 */
export async function openEnvelope(envelope: KeyEnvelope, options: OpenEnvelopeOptions): Promise<ReleasedKey> {
  const source = options.source ?? 'the envelope';
  const clock = options.clock ?? systemClock;
  const signer = options.trustedAuthorities.find((k) => keyIdOf(k) === envelope.signature.keyid);
  if (!signer)
    throw new AuthError(
      `${source} is signed by key ${envelope.signature.keyid.slice(0, 16)}, which this device does not trust as a key-release authority. Get an envelope from your authority, or trust its key (tandem keys trust).`,
      { details: { source, reason: 'untrusted-signer', keyid: envelope.signature.keyid } },
    );
  const payload = Buffer.from(envelope.payload, 'base64url');
  const signature = Buffer.from(envelope.signature.sig, 'base64url');
  // Only the one canonical base64url text of each: a changed character that decodes to the same
  // bytes (the spare bits of the last one) is a changed envelope too.
  const canonical =
    payload.toString('base64url') === envelope.payload && signature.toString('base64url') === envelope.signature.sig;
  if (!canonical || signature.length !== 64 || !verify(null, payload, publicKeyOf(signer), signature))
    throw new IntegrityError(
      `${source}: the authority's signature does not match; the envelope was altered or damaged.`,
      {
        details: { source, reason: 'bad-signature' },
      },
    );
  const grant = readGrant(envelope, source);
  if (grant.authority !== envelope.signature.keyid)
    throw new IntegrityError(`${source}: the grant names another authority than the one that signed it.`, {
      details: { source, reason: 'authority-mismatch' },
    });
  // Authentic from here on: its issued-at time is a trusted time even if the rest does not fit.
  await options.trustedTime.observe(Date.parse(grant.lease.issuedAt), 'envelope');
  const refuse = (reason: string, message: string): AuthError =>
    new AuthError(`${source} ${message}`, {
      details: { source, reason, envelopeId: grant.envelopeId, image: grant.image, device: grant.device.id },
    });
  const me = options.device.publicKey;
  if (grant.device.id !== me.deviceId || grant.device.sealingKey !== me.sealingKey)
    throw refuse(
      'other-device',
      `is for device ${grant.device.id}, not this one (${me.deviceId}). Ask for an envelope sealed for this device: tandem keys device show prints its key.`,
    );
  if (grant.image.id !== options.imageId)
    throw refuse('other-image', `is for image "${grant.image.id}", not "${options.imageId}".`);
  if (!versionInRange(options.version, grant.image.versions))
    throw refuse(
      'version-not-covered',
      `covers versions "${grant.image.versions}" of ${grant.image.id}, not ${options.version}. Ask for an envelope that covers it.`,
    );
  const now = clock.now();
  options.trustedTime.check(now);
  await options.trustedTime.observe(now, 'clock');
  const notBefore = Date.parse(grant.lease.notBefore);
  const notAfter = Date.parse(grant.lease.notAfter);
  const leaseDetails = {
    source,
    notBefore: grant.lease.notBefore,
    notAfter: grant.lease.notAfter,
    now: new Date(now).toISOString(),
  };
  if (now < notBefore)
    throw new LeaseError(`The offline lease in ${source} begins at ${grant.lease.notBefore}; it is not valid yet.`, {
      details: { ...leaseDetails, reason: 'not-yet-valid' },
    });
  if (now >= notAfter)
    throw new LeaseError(
      `The offline lease in ${source} ended at ${grant.lease.notAfter}. Connect to get a new envelope.`,
      {
        details: { ...leaseDetails, reason: 'expired' },
      },
    );
  using sealingKey = await options.device.sealingPrivateKey();
  let bytes: Buffer;
  try {
    bytes = await sealingKey.use((sk) =>
      hpkeOpen(
        sk,
        {
          authority: grant.authority,
          deviceId: me.deviceId,
          imageId: grant.image.id,
          versions: grant.image.versions,
          dataKeyId: grant.dataKeyId,
        },
        Buffer.from(grant.sealed.enc, 'base64url'),
        Buffer.from(grant.sealed.ciphertext, 'base64url'),
      ),
    );
  } catch (err) {
    throw new IntegrityError(
      `${source}: the sealed key does not open with this device's key; it was sealed wrongly or altered.`,
      {
        cause: err,
        details: { source, reason: 'unseal-failed' },
      },
    );
  }
  let dataKey: DataKey;
  try {
    dataKey = new DataKey(bytes);
  } catch (err) {
    throw new IntegrityError(`${source}: the sealed key is not a data key.`, { cause: err, details: { source } });
  } finally {
    wipe(bytes);
  }
  if (!timingSafeEqual(Buffer.from(dataKey.id), Buffer.from(grant.dataKeyId))) {
    dataKey.dispose();
    throw new IntegrityError(`${source}: the sealed key does not match the key id it names.`, { details: { source } });
  }
  return { dataKey, grant, [Symbol.dispose]: () => dataKey.dispose() };
}

/** Checks that a released key is the one an image was encrypted with (its key id). */
export function requireDataKey(dataKey: DataKey, expectedKeyId: string, what: string): void {
  if (dataKey.id !== expectedKeyId)
    throw new AuthError(
      `The data key (${dataKey.id}) is not the key ${what} was encrypted with (${expectedKeyId}); the image was re-keyed or the envelope is for another key. Ask for a new envelope.`,
      { details: { reason: 'wrong-data-key', expected: expectedKeyId, actual: dataKey.id } },
    );
}

/** The keys directory of a state directory. */
export function keysDirOf(stateDir: string): string {
  return join(stateDir, 'keys');
}

/**
 * This endpoint's device keys and trusted-time record, both created on first use (directory
 * 0700, files 0600).
 *
 * @example
 * ```ts
 * const { device, trustedTime } = await openEndpointKeys('/home/ana/.local/state/tandem/keys');
 * ```
 */
export async function openEndpointKeys(
  keysDir: string,
  options: { clock?: Clock; toleranceMs?: number } = {},
): Promise<{ device: DeviceKeys; trustedTime: TrustedTime }> {
  if (typeof keysDir !== 'string' || keysDir === '') throw new InvalidInputError('A keys directory is needed.');
  await ensurePrivateDir(keysDir);
  const existing = await DeviceKeys.load(keysDir);
  const device = existing ?? (await DeviceKeys.create(keysDir, options));
  const trustedTime = await TrustedTime.open(keysDir, device, { ...options, create: existing === undefined });
  return { device, trustedTime };
}
