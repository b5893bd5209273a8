/**
 * Signed requests: every request after enrollment carries the device id, a timestamp, a random
 * nonce and an Ed25519 signature by the device's key over the method, the path, those three and
 * the SHA-256 of the body. The server accepts a timestamp within {@link REQUEST_WINDOW_MS} of its
 * clock and each nonce once (recorded in the store, so every server process sees it).
 */
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';

/** How far a request's timestamp may be from the server's clock. */
export const REQUEST_WINDOW_MS = 5 * 60 * 1000;

/** The headers a signed request carries. */
export const SIGNATURE_HEADERS = {
  device: 'x-tandem-device',
  time: 'x-tandem-time',
  nonce: 'x-tandem-nonce',
  signature: 'x-tandem-signature',
} as const;

/** What is signed. */
export interface SignedParts {
  readonly method: string;
  readonly path: string;
  readonly device: string;
  /** ISO 8601. */
  readonly time: string;
  readonly nonce: string;
  readonly body: Uint8Array;
}

/**
 * The exact bytes a device signs: a domain label, then each part on its own line, the body as
 * its SHA-256. The label keeps a request signature from ever being valid as anything else.
 *
 * @example
 * ```ts
 * const bytes = signingInput({ method: 'POST', path: '/v1/check-in', device, time, nonce, body });
 * ```
 */
export function signingInput(parts: SignedParts): Buffer {
  const bodyHash = createHash('sha256').update(parts.body).digest('hex');
  return Buffer.from(
    ['tandem-request/v1', parts.method.toUpperCase(), parts.path, parts.device, parts.time, parts.nonce, bodyHash].join(
      '\n',
    ),
    'utf8',
  );
}

/** A new random nonce (128 bits, base64url). */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

// Parsed public keys by their text, so a server verifying the same devices again and again
// parses each once (bounded: cleared when it grows past 50,000 devices).
const publicKeys = new Map<string, KeyObject>();

function publicKeyOf(signingKey: string): KeyObject {
  let key = publicKeys.get(signingKey);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signingKey }, format: 'jwk' });
    if (publicKeys.size >= 50_000) publicKeys.clear();
    publicKeys.set(signingKey, key);
  }
  return key;
}

/** Checks an Ed25519 signature (base64url) by a raw public key (base64url) over `data`. */
export function verifyDeviceSignature(signingKey: string, data: Uint8Array, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64url');
  if (sig.length !== 64 || sig.toString('base64url') !== signature) return false;
  try {
    return verify(null, data, publicKeyOf(signingKey), sig);
  } catch {
    return false;
  }
}
