import { randomUUID, sign } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import { InvalidInputError } from '../errors.js';
import { generateSigningKey, type PublicKeyEntry, type SigningKey } from '../delivery/trust/keys.js';
import { parseDuration } from '../util/duration.js';
import type { DataKey } from './data-key.js';
import { parseDevicePublicKey, type DevicePublicKey } from './device-key.js';
import { ENVELOPE_SUITE, type KeyEnvelope, type KeyGrant } from './envelope.js';
import { hpkeSeal } from './hpke.js';
import { parseVersionRange, type VersionRange } from './versions.js';

/** A point in time: epoch milliseconds, a Date or ISO 8601 text. */
export type TimeInput = number | Date | string;

/** What to seal: one image's data key for one device, for some versions, under a lease. */
export interface SealRequest {
  readonly dataKey: DataKey;
  /** The device, as parsed or in its text form (`tandem-device1:...`). */
  readonly device: DevicePublicKey | string;
  /** The image's id: its workspace name. */
  readonly imageId: string;
  /** The versions the key may open (see {@link VersionRange}); default `*`. */
  readonly versions?: VersionRange;
  /** Default: now. */
  readonly notBefore?: TimeInput;
  /** The end of the offline lease: a time, or a duration from now (`P14D`, `PT12H`). */
  readonly notAfter: TimeInput;
  /** SHA-256 (hex) of the policy the lease is issued under; default the SHA-256 of nothing. */
  readonly policySha256?: string;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * The key-release authority: seals an image's data key for one authorized device, bound to the
 * image, the versions and the device, inside an envelope it signs with its Ed25519 key, with
 * the offline lease the policy gives. The management server and `tandem keys seal` use it;
 * endpoints trust its public key ({@link KeyReleaseAuthority.publicKey}).
 *
 * @example
 * ```ts
 * const authority = new KeyReleaseAuthority(generateSigningKey());
 * const envelope = await authority.seal({ dataKey, device: 'tandem-device1:...', imageId: 'legacy-erp', versions: '>=3.0.0 <4', notAfter: 'P14D' });
 * ```
 */
export class KeyReleaseAuthority {
  readonly #key: SigningKey;
  readonly #clock: Clock;

  constructor(key: SigningKey, options: { clock?: Clock } = {}) {
    this.#key = key;
    this.#clock = options.clock ?? systemClock;
  }

  /** An authority with a new random key (keep `signingKey` somewhere safe to use it again). */
  static generate(options: { clock?: Clock } = {}): KeyReleaseAuthority {
    return new KeyReleaseAuthority(generateSigningKey(), options);
  }

  /** The key id endpoints see in `signature.keyid`. */
  get keyid(): string {
    return this.#key.keyid;
  }

  /** The public key endpoints trust. */
  get publicKey(): PublicKeyEntry {
    return this.#key.entry;
  }

  /** The signing key itself, to save it. */
  get signingKey(): SigningKey {
    return this.#key;
  }

  /** Seals `request.dataKey` for `request.device` and signs the envelope. */
  async seal(request: SealRequest): Promise<KeyEnvelope> {
    const now = this.#clock.now();
    const device = typeof request.device === 'string' ? parseDevicePublicKey(request.device) : request.device;
    if (typeof request.imageId !== 'string' || request.imageId.length === 0 || request.imageId.length > 128)
      throw new InvalidInputError('An image id is 1 to 128 characters (the workspace name).', {
        details: { imageId: request.imageId },
      });
    const versions = parseVersionRange(request.versions ?? '*');
    const notBefore = request.notBefore === undefined ? now : timeOf(request.notBefore, now, 'notBefore');
    const notAfter = timeOf(request.notAfter, now, 'notAfter');
    if (notAfter <= notBefore)
      throw new InvalidInputError(
        `The lease ends (${iso(notAfter)}) before it begins (${iso(notBefore)}); give a later notAfter.`,
        { details: { notBefore: iso(notBefore), notAfter: iso(notAfter) } },
      );
    const policySha256 = request.policySha256 ?? EMPTY_SHA256;
    if (!/^[0-9a-f]{64}$/.test(policySha256))
      throw new InvalidInputError('policySha256 is a SHA-256 in hex (64 lower-case digits).');
    const sealed = await request.dataKey.use((secret) =>
      hpkeSeal(
        Buffer.from(device.sealingKey, 'base64url'),
        {
          authority: this.keyid,
          deviceId: device.deviceId,
          imageId: request.imageId,
          versions,
          dataKeyId: request.dataKey.id,
        },
        secret,
      ),
    );
    const grant: KeyGrant = {
      format: 'tandem.key-grant/v1',
      envelopeId: randomUUID(),
      authority: this.keyid,
      device: { id: device.deviceId, sealingKey: device.sealingKey },
      image: { id: request.imageId, versions },
      dataKeyId: request.dataKey.id,
      lease: { issuedAt: iso(now), notBefore: iso(notBefore), notAfter: iso(notAfter), policySha256 },
      sealed: {
        suite: ENVELOPE_SUITE,
        enc: sealed.enc.toString('base64url'),
        ciphertext: sealed.ciphertext.toString('base64url'),
      },
    };
    const payload = Buffer.from(JSON.stringify(grant), 'utf8');
    return {
      format: 'tandem.key-envelope/v1',
      payload: payload.toString('base64url'),
      signature: { keyid: this.keyid, sig: sign(null, payload, this.#key.privateKey).toString('base64url') },
    };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Epoch milliseconds of a time, or of now plus an ISO 8601 duration. */
export function timeOf(input: TimeInput, now: number, what: string): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input)) return input;
  } else if (input instanceof Date) {
    if (!Number.isNaN(input.getTime())) return input.getTime();
  } else if (typeof input === 'string') {
    if (/^P/i.test(input)) {
      try {
        return now + parseDuration(input);
      } catch {
        // falls through to the error below
      }
    } else {
      const t = Date.parse(input);
      if (!Number.isNaN(t) && /\d{4}-\d{2}-\d{2}/.test(input)) return t;
    }
  }
  throw new InvalidInputError(
    `${what} ${JSON.stringify(input)} is not a time; expected ISO 8601 (2027-06-30T00:00:00Z) or a duration from now (P14D).`,
    { details: { [what]: String(input) } },
  );
}
