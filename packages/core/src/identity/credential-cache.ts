import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { readPrivateFile, writePrivateFile } from '../crypto/private-files.js';
import type { TrustedTime } from '../crypto/trusted-time.js';
import { IntegrityError, InvalidInputError } from '../errors.js';
import type { AccountState, DirectoryGroup, DirectoryUser, SignInResult } from './directory.js';
import { DEFAULT_SCRYPT_PARAMS, decoyHash, hashPassword, verifyPassword, type ScryptParams } from './password-hash.js';
import { SignInError } from './sign-in-error.js';

/** How long after the last online sign-in an offline one is still accepted, by default: 14 days. */
export const DEFAULT_MAX_OFFLINE_MS = 14 * 24 * 3600 * 1000;

/** Delays of wrong offline passwords: free failures, then doubling from `baseDelayMs` up to `maxDelayMs`. */
export interface OfflineDelayPolicy {
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_OFFLINE_DELAY: OfflineDelayPolicy = {
  freeFailures: 3,
  baseDelayMs: 2000,
  maxDelayMs: 15 * 60 * 1000,
};

/** Options of {@link CredentialCache.open}. */
export interface CredentialCacheOptions {
  /** The endpoint's private state directory; the cache is `<stateDir>/identity/credentials/`. */
  readonly stateDir: string;
  /** The device's trusted-time record (from `openEndpointKeys`): the cache's time is its clock, checked against the record. */
  readonly trustedTime: TrustedTime;
  /** Default 14 days; the workspace's offline lease bounds the work itself. */
  readonly maxOfflineMs?: number;
  readonly offlineDelay?: OfflineDelayPolicy;
  /** Parameters of the password verifier (default: the same as the server's). */
  readonly scrypt?: ScryptParams;
}

/** What an offline sign-in gives: the directory's answer as it was at the last online sign-in. */
export interface CachedSignIn extends SignInResult {
  readonly offline: true;
  /** The last online sign-in. */
  readonly cachedAt: string;
  /** Offline sign-in works until then. */
  readonly validUntil: string;
}

const AccountStateSchema = z.object({
  disabled: z.boolean(),
  locked: z.boolean(),
  lockedUntil: z.string().optional(),
  expired: z.boolean(),
  passwordChangedAt: z.string().optional(),
  passwordExpiresAt: z.string().optional(),
});
const GroupSchema = z.object({ name: z.string(), dn: z.string(), description: z.string().optional() });
const EntrySchema = z.strictObject({
  format: z.literal('tandem.credentials/v1'),
  name: z.string(),
  verifier: z.string(),
  user: z.object({
    name: z.string(),
    dn: z.string(),
    displayName: z.string().optional(),
    mail: z.string().optional(),
    state: AccountStateSchema,
  }),
  groups: z.array(GroupSchema),
  cachedAt: z.number().int(),
  envelopes: z.array(z.string()),
  failures: z.number().int().nonnegative(),
  blockedUntil: z.number().int(),
});
type Entry = z.infer<typeof EntrySchema>;

const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Where the cache keeps `name`'s entry: by a digest of the case-folded name (no name in a path).
 *
 * @example
 * ```ts
 * await rm(credentialFileOf(stateDir, 'ana'), { force: true });
 * ```
 */
export function credentialFileOf(stateDir: string, name: string): string {
  const id = createHash('sha256').update(name.normalize('NFC').trim().toLowerCase()).digest('hex');
  return join(stateDir, 'identity', 'credentials', `${id}.json`);
}

/**
 * An envelope's file in the state directory (the same place `tandem pull` and `tandem up` read).
 *
 * @example
 * ```ts
 * envelopeFileOf(stateDir, 'legacy-erp'); // <stateDir>/envelopes/legacy-erp.envelope
 * ```
 */
export function envelopeFileOf(stateDir: string, imageId: string): string {
  if (!IMAGE_ID.test(imageId) || imageId.includes('..'))
    throw new InvalidInputError(`"${imageId}" is not an image id.`, { details: { imageId } });
  return join(stateDir, 'envelopes', `${imageId}.envelope`);
}

/**
 * The endpoint's cached credentials, for signing in offline after a first online sign-in (as
 * MED-V did). Each user's entry (mode 0600, in the private state directory) holds an scrypt
 * verifier of the password, never the password, with the account state and groups the
 * directory gave, the last online sign-in's time and the envelopes fetched for the user.
 *
 * Offline: wrong passwords are delayed with a growing delay kept in the entry; the time is the
 * trusted-time record's (a clock set back past it is refused with ClockRollbackError, and the
 * validity is judged from the later of the clock and the record, so setting the clock back
 * cannot extend it). Online: {@link CredentialCache.reconcile} deletes the entry and the user's
 * envelopes when the server says the account is disabled, locked or expired or its password
 * changed since the entry was made.
 *
 * @example
 * ```ts
 * const { trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
 * const cache = await CredentialCache.open({ stateDir, trustedTime });
 * await cache.remember('ana', password, onlineResult, { envelopes: ['legacy-erp'] });
 * const offline = await cache.signInOffline('ana', password); // later, without the server
 * ```
 */
export class CredentialCache {
  readonly #o: CredentialCacheOptions;
  readonly #maxOffline: number;
  readonly #delay: OfflineDelayPolicy;
  readonly #scrypt: ScryptParams;

  private constructor(options: CredentialCacheOptions) {
    this.#o = options;
    this.#maxOffline = options.maxOfflineMs ?? DEFAULT_MAX_OFFLINE_MS;
    this.#delay = options.offlineDelay ?? DEFAULT_OFFLINE_DELAY;
    this.#scrypt = options.scrypt ?? DEFAULT_SCRYPT_PARAMS;
  }

  /** Opens the cache of a state directory. */
  static open(options: CredentialCacheOptions): Promise<CredentialCache> {
    if (typeof options.stateDir !== 'string' || options.stateDir === '')
      throw new InvalidInputError('A state directory is needed for the credential cache.');
    return Promise.resolve(new CredentialCache(options));
  }

  /** Records an online sign-in: a new verifier of `password`, the state and groups, now as its time. */
  async remember(
    name: string,
    password: string,
    result: SignInResult,
    options: { envelopes?: readonly string[] } = {},
  ): Promise<void> {
    const now = await this.#o.trustedTime.now();
    for (const e of options.envelopes ?? []) envelopeFileOf(this.#o.stateDir, e);
    const old = await this.#read(name).catch(() => undefined);
    const entry: Entry = {
      format: 'tandem.credentials/v1',
      name,
      verifier: await hashPassword(password, this.#scrypt),
      user: plainUser(result.user),
      groups: result.groups.map((g) => ({
        name: g.name,
        dn: g.dn,
        ...(g.description === undefined ? {} : { description: g.description }),
      })),
      cachedAt: now,
      envelopes: [...new Set([...(old?.envelopes ?? []), ...(options.envelopes ?? [])])],
      failures: 0,
      blockedUntil: 0,
    };
    await this.#write(entry);
  }

  /** Adds an envelope (by image id) to what {@link CredentialCache.forget} deletes with the user. */
  async noteEnvelope(name: string, imageId: string): Promise<void> {
    envelopeFileOf(this.#o.stateDir, imageId);
    const entry = await this.#read(name);
    if (!entry || entry.envelopes.includes(imageId)) return;
    await this.#write({ ...entry, envelopes: [...entry.envelopes, imageId] });
  }

  /**
   * Signs `name` in from the cache. Refusals: `bad-credentials` (wrong password, or nobody
   * cached under that name: the same answer), `throttled` while a delay runs (`retryAfterMs`),
   * `offline-expired` past the validity, `password-expired` when the cached expiry has passed.
   * A clock set back throws ClockRollbackError.
   */
  async signInOffline(name: string, password: string): Promise<CachedSignIn> {
    const now = await this.#o.trustedTime.now();
    const entry = await this.#read(name);
    if (!entry) {
      await verifyPassword(password, await decoyHash(this.#scrypt));
      throw new SignInError('bad-credentials');
    }
    if (now < entry.blockedUntil)
      throw new SignInError(
        'throttled',
        `Too many wrong passwords. Try again in ${Math.ceil((entry.blockedUntil - now) / 1000)} s.`,
        {
          retryAfterMs: entry.blockedUntil - now,
        },
      );
    if (!(await verifyPassword(password, entry.verifier))) {
      const failures = entry.failures + 1;
      const d = this.#delay;
      const wait =
        failures <= d.freeFailures
          ? 0
          : Math.min(d.maxDelayMs, d.baseDelayMs * 2 ** Math.min(30, failures - d.freeFailures - 1));
      await this.#write({ ...entry, failures, blockedUntil: now + wait });
      throw new SignInError('bad-credentials');
    }
    const judged = Math.max(now, this.#o.trustedTime.latest);
    const validUntil = entry.cachedAt + this.#maxOffline;
    if (judged >= validUntil) throw new SignInError('offline-expired');
    const pwExpires =
      entry.user.state.passwordExpiresAt === undefined ? undefined : Date.parse(entry.user.state.passwordExpiresAt);
    if (pwExpires !== undefined && pwExpires <= judged) throw new SignInError('password-expired');
    if (entry.failures !== 0) await this.#write({ ...entry, failures: 0, blockedUntil: 0 });
    return {
      offline: true,
      user: entry.user,
      groups: entry.groups,
      cachedAt: new Date(entry.cachedAt).toISOString(),
      validUntil: new Date(validUntil).toISOString(),
      passwordExpiresInMs: pwExpires === undefined ? undefined : pwExpires - judged,
    };
  }

  /** The cached entry's user and groups (no password check), or undefined. */
  async cached(
    name: string,
  ): Promise<{ user: DirectoryUser; groups: DirectoryGroup[]; cachedAt: string; envelopes: string[] } | undefined> {
    const e = await this.#read(name);
    return (
      e && { user: e.user, groups: e.groups, cachedAt: new Date(e.cachedAt).toISOString(), envelopes: e.envelopes }
    );
  }

  /**
   * Applies what the server says about the account at a contact: a disabled, locked or expired
   * account, one the server no longer knows (`undefined`), or a password changed after the entry
   * was made, forgets the user. Returns whether it did.
   */
  async reconcile(name: string, server: AccountState | undefined): Promise<boolean> {
    const entry = await this.#read(name).catch(() => undefined);
    if (!entry) return false;
    const changedAt = server?.passwordChangedAt === undefined ? undefined : Date.parse(server.passwordChangedAt);
    const cachedChange =
      entry.user.state.passwordChangedAt === undefined ? undefined : Date.parse(entry.user.state.passwordChangedAt);
    const changed =
      changedAt !== undefined && (cachedChange === undefined ? changedAt > entry.cachedAt : changedAt > cachedChange);
    if (!server || server.disabled || server.locked || server.expired || changed) {
      await this.forget(name);
      return true;
    }
    return false;
  }

  /** Deletes the user's cached credentials and the envelopes fetched for them. Returns the image ids removed. */
  async forget(name: string): Promise<string[]> {
    const file = credentialFileOf(this.#o.stateDir, name);
    const entry = await this.#read(name).catch(() => undefined);
    const removed: string[] = [];
    for (const imageId of entry?.envelopes ?? []) {
      let path: string;
      try {
        path = envelopeFileOf(this.#o.stateDir, imageId);
      } catch {
        continue;
      }
      await rm(path, { force: true });
      removed.push(imageId);
    }
    await rm(file, { force: true });
    return removed;
  }

  /** The names cached here. */
  async users(): Promise<string[]> {
    const dir = join(this.#o.stateDir, 'identity', 'credentials');
    const files = await readdir(dir).catch(() => [] as string[]);
    const names: string[] = [];
    for (const f of files.filter((x) => /^[0-9a-f]{64}\.json$/.test(x))) {
      const raw = await readPrivateFile(join(dir, f));
      const parsed = raw && EntrySchema.safeParse(safeJson(raw.toString('utf8')));
      if (parsed?.success) names.push(parsed.data.name);
    }
    return names.sort();
  }

  async #read(name: string): Promise<Entry | undefined> {
    if (typeof name !== 'string' || name.trim() === '') return undefined;
    const file = credentialFileOf(this.#o.stateDir, name);
    const raw = await readPrivateFile(file);
    if (!raw) return undefined;
    const parsed = EntrySchema.safeParse(safeJson(raw.toString('utf8')));
    if (
      !parsed.success ||
      parsed.data.name.normalize('NFC').trim().toLowerCase() !== name.normalize('NFC').trim().toLowerCase()
    )
      throw new IntegrityError(`The cached credentials in ${file} are damaged. Sign in online once to replace them.`, {
        details: { file },
      });
    return parsed.data;
  }

  async #write(entry: Entry): Promise<void> {
    await writePrivateFile(credentialFileOf(this.#o.stateDir, entry.name), JSON.stringify(entry, null, 2) + '\n');
  }
}

function plainUser(u: DirectoryUser): Entry['user'] {
  const s = u.state;
  const state: Entry['user']['state'] = { disabled: s.disabled, locked: s.locked, expired: s.expired };
  if (s.lockedUntil !== undefined) state.lockedUntil = s.lockedUntil;
  if (s.passwordChangedAt !== undefined) state.passwordChangedAt = s.passwordChangedAt;
  if (s.passwordExpiresAt !== undefined) state.passwordExpiresAt = s.passwordExpiresAt;
  return {
    name: u.name,
    dn: u.dn,
    ...(u.displayName === undefined ? {} : { displayName: u.displayName }),
    ...(u.mail === undefined ? {} : { mail: u.mail }),
    state,
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
