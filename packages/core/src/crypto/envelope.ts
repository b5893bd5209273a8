import { z } from 'zod';
import { IntegrityError, InvalidInputError } from '../errors.js';
import type { VersionRange } from './versions.js';

/** The HPKE suite every envelope uses (RFC 9180 ids 0x0020, 0x0001, 0x0002). */
export const ENVELOPE_SUITE = 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM';
/** Largest envelope accepted, in bytes; real ones are about 1.5 KiB. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;

/** The offline lease an envelope carries: when its key may be used without asking again. */
export interface Lease {
  /** When the authority issued it (ISO 8601, UTC). */
  readonly issuedAt: string;
  readonly notBefore: string;
  /** The offline time limit: after this the key is refused until a new envelope arrives. */
  readonly notAfter: string;
  /** SHA-256 (hex) of the policy the lease was issued under. */
  readonly policySha256: string;
}

/**
 * What an envelope grants, signed by the authority: one image's data key, sealed for one device,
 * for the versions in a range, under a lease. Everything but `sealed` is public, and is what
 * `tandem keys inspect` shows.
 */
export interface KeyGrant {
  readonly format: 'tandem.key-grant/v1';
  /** A random id for this envelope (for audit and revocation lists). */
  readonly envelopeId: string;
  /** Key id of the authority's Ed25519 key that signed it. */
  readonly authority: string;
  readonly device: { readonly id: string; readonly sealingKey: string };
  readonly image: { readonly id: string; readonly versions: VersionRange };
  /** The check value of the sealed data key ({@link DataKey.id}). */
  readonly dataKeyId: string;
  readonly lease: Lease;
  /** HPKE base mode: the encapsulated key and the ciphertext of the data key, base64url. */
  readonly sealed: { readonly suite: typeof ENVELOPE_SUITE; readonly enc: string; readonly ciphertext: string };
}

/** An envelope as stored and sent: the grant's bytes and the authority's Ed25519 signature over them. */
export interface KeyEnvelope {
  readonly format: 'tandem.key-envelope/v1';
  /** The grant's JSON, base64url: the exact bytes signed. */
  readonly payload: string;
  readonly signature: { readonly keyid: string; readonly sig: string };
}

const HEX64 = /^[0-9a-f]{64}$/;
const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);
const EnvelopeSchema = z.strictObject({
  format: z.literal('tandem.key-envelope/v1'),
  payload: b64.max(MAX_ENVELOPE_BYTES),
  signature: z.strictObject({ keyid: z.string().regex(HEX64), sig: b64.length(86) }),
});
const iso = z.iso.datetime();
const GrantSchema = z.strictObject({
  format: z.literal('tandem.key-grant/v1'),
  envelopeId: z.uuid(),
  authority: z.string().regex(HEX64),
  device: z.strictObject({ id: z.string().regex(/^[0-9a-f]{32}$/), sealingKey: b64.length(43) }),
  image: z.strictObject({ id: z.string().min(1).max(128), versions: z.string().min(1).max(1024) }),
  dataKeyId: z.string().regex(/^[0-9a-f]{32}$/),
  lease: z.strictObject({ issuedAt: iso, notBefore: iso, notAfter: iso, policySha256: z.string().regex(HEX64) }),
  sealed: z.strictObject({ suite: z.literal(ENVELOPE_SUITE), enc: b64.length(43), ciphertext: b64.length(64) }),
});

/** Serializes an envelope as the JSON text stored in a file. */
export function serializeEnvelope(envelope: KeyEnvelope): string {
  return JSON.stringify(envelope, null, 2) + '\n';
}

/**
 * Parses an envelope's outer form (no signature check: {@link openEnvelope} does that).
 * `source` names it in messages.
 */
export function parseEnvelope(bytes: Uint8Array | string, source: string): KeyEnvelope {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  if (size > MAX_ENVELOPE_BYTES)
    throw new InvalidInputError(`${source} is ${size} bytes, too large for a key envelope.`, { details: { source } });
  let data: unknown;
  try {
    data = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidInputError(`${source} is not a key envelope: not valid JSON.`, {
      cause: err,
      details: { source },
    });
  }
  const parsed = EnvelopeSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(
      `${source} is not a key envelope: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid'}.`,
      { details: { source, path: issue?.path.join('.') } },
    );
  }
  return parsed.data;
}

/**
 * The grant inside an envelope, without checking its signature: for `tandem keys inspect` and
 * for code that verifies afterwards. Never trust it before {@link openEnvelope} has.
 */
export function readGrant(envelope: KeyEnvelope, source: string): KeyGrant {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(envelope.payload, 'base64url').toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`${source}: the grant inside the envelope is not valid JSON; it was damaged or altered.`, {
      cause: err,
      details: { source },
    });
  }
  const parsed = GrantSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new IntegrityError(
      `${source}: the grant inside the envelope is malformed (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}).`,
      { details: { source, path: issue?.path.join('.') } },
    );
  }
  return parsed.data;
}
