import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

/** scrypt cost parameters. Recorded in every hash, so they can be raised without a migration. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The default: N=2^15, r=8, p=3 (32 MiB of memory per hash), one of the settings OWASP's Password Storage Cheat Sheet lists. */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 3 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Bounds on what a stored hash may ask for: a damaged or hostile record must not make the server
// spend a gigabyte or a minute on one sign-in.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Hashes a password with scrypt (node:crypto) and a random 16-byte salt, in the form
 * `scrypt$N$r$p$SALT$HASH` (salt and hash in base64url). The password is NFC-normalised first,
 * so the same password typed on two keyboards hashes the same.
 *
 * @example
 * ```ts
 * const hash = await hashPassword('correct horse battery staple');
 * await verifyPassword('correct horse battery staple', hash); // true
 * ```
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/**
 * True when `password` matches `hash` (from {@link hashPassword}). The comparison is constant
 * time; a malformed hash, or one whose parameters are out of bounds, is an InvalidInputError.
 *
 * @example
 * ```ts
 * if (!(await verifyPassword(typed, user.passwordHash))) throw new SignInError('bad-credentials');
 * ```
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parsePasswordHash(hash);
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
}

/**
 * The parameters, salt and key of a hash.
 *
 * @example
 * ```ts
 * parsePasswordHash(hash).params; // { N: 32768, r: 8, p: 3 }
 * ```
 */
export function parsePasswordHash(hash: string): { params: ScryptParams; salt: Buffer; key: Buffer } {
  const parts = hash.split('$');
  const bad = (why: string): InvalidInputError =>
    new InvalidInputError(`A stored password hash is malformed (${why}); set the password again.`, {
      details: { reason: 'bad-password-hash' },
    });
  if (parts.length !== 6 || parts[0] !== 'scrypt') throw bad('not scrypt$N$r$p$salt$hash');
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^[0-9]{1,8}$/.test(x ?? '') ? Number(x) : NaN));
  const params = { N: N ?? NaN, r: r ?? NaN, p: p ?? NaN };
  try {
    checkParams(params);
  } catch {
    throw bad('parameters out of bounds');
  }
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const key = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || key.length < 16 || key.length > 64) throw bad('salt or hash of the wrong length');
  return { params, salt, key };
}

function checkParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const ok =
    Number.isInteger(N) &&
    N >= 2 &&
    N <= MAX_N &&
    (N & (N - 1)) === 0 &&
    Number.isInteger(r) &&
    r >= 1 &&
    r <= MAX_R &&
    Number.isInteger(p) &&
    p >= 1 &&
    p <= MAX_P;
  if (!ok) throw new InvalidInputError(`scrypt parameters N=${N} r=${r} p=${p} are out of bounds.`);
}

/** A hash of a password nobody has, to spend the same time on an unknown user as on a known one. */
export async function decoyHash(params: ScryptParams): Promise<string> {
  const cached = decoys.get(key(params));
  if (cached) return cached;
  const made = await hashPassword(randomBytes(24).toString('base64url'), params);
  decoys.set(key(params), made);
  return made;
}
const decoys = new Map<string, string>();
const key = (p: ScryptParams): string => `${p.N}/${p.r}/${p.p}`;
