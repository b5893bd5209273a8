// Browser sessions of the management console (issue 16): directory sign-in limited to the admin
// group, a random cookie whose SHA-256 is the store's key (any server process accepts it), a
// CSRF token bound to the session, idle and absolute expiry.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { TandemError, groupMatches, systemClock, type Clock } from '@tandem/core';
import type { ServerDirectory, ServerSignInThrottle } from './directory-port.js';
import { ApiError } from './errors.js';
import type { ConsoleSessionRecord, ServerStore } from './store/types.js';

/** The session cookie's name. */
export const CONSOLE_COOKIE = 'tandem_console';
/** The header that carries the CSRF token on every call made with the cookie. */
export const CSRF_HEADER = 'x-csrf-token';
/** The admin group of the built-in directory when the server config names none. */
export const DEFAULT_ADMIN_GROUP = 'admins';
/** Default idle limit (30 minutes) and absolute limit (12 hours) of a session. */
export const CONSOLE_IDLE_MS = 30 * 60_000;
export const CONSOLE_ABSOLUTE_MS = 12 * 3600_000;
/** A session's last-seen time is written at most this often (each request would be a write). */
const TOUCH_EVERY_MS = 60_000;

/** What {@link ConsoleSessions} works with. */
export interface ConsoleSessionsOptions {
  readonly store: ServerStore;
  readonly directory: ServerDirectory;
  /** The sign-in throttle device sign-in uses (growing delays per account and source). */
  readonly throttle?: ServerSignInThrottle | undefined;
  /** The group (name or DN, nested membership counts) whose members may sign in. */
  readonly adminGroup: string;
  readonly clock?: Clock | undefined;
  readonly idleMs?: number | undefined;
  readonly absoluteMs?: number | undefined;
}

/** What sign-in and `GET /v1/console/session` answer. */
export interface ConsoleSessionReply {
  readonly user: string;
  readonly displayName?: string | undefined;
  readonly csrfToken: string;
  readonly expiresAt: string;
  readonly idleExpiresAt: string;
}

/** A session found from a request's cookie. */
export interface ConsoleSession {
  readonly record: ConsoleSessionRecord;
  /** The cookie's value (the secret). */
  readonly secret: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Reads one cookie from a Cookie header. */
export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  const header = headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * The console's sessions. Sign-in goes through the server's directory and sign-in throttle (the
 * same growing delays as device sign-in, no lockout by guessing) and then requires membership
 * of the admin group. The cookie value is 32 random bytes; the store keeps only its SHA-256, so a
 * copy of the database holds no usable session. The CSRF token is an HMAC-like hash of the
 * cookie value, so it is bound to the session and needs no storage.
 *
 * @example
 * ```ts
 * const sessions = new ConsoleSessions({ store, directory, throttle, adminGroup: 'admins' });
 * const { secret, reply } = await sessions.signIn('alice', password, '127.0.0.1');
 * res.setHeader('set-cookie', sessions.cookie(secret));
 * ```
 */
export class ConsoleSessions {
  readonly #o: ConsoleSessionsOptions;
  readonly #clock: Clock;
  readonly idleMs: number;
  readonly absoluteMs: number;

  constructor(options: ConsoleSessionsOptions) {
    if (options.adminGroup.trim() === '')
      throw new TandemError('The console needs an admin group (adminGroup is empty).', {
        code: 'TANDEM_INVALID_INPUT',
        fault: 'user',
      });
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.idleMs = options.idleMs ?? CONSOLE_IDLE_MS;
    this.absoluteMs = options.absoluteMs ?? CONSOLE_ABSOLUTE_MS;
  }

  get adminGroup(): string {
    return this.#o.adminGroup;
  }

  /** The CSRF token of a session (from its cookie value). */
  static csrfOf(secret: string): string {
    return createHash('sha256').update(`tandem-console-csrf:${secret}`).digest('base64url');
  }

  /** The Set-Cookie value for a session; `secret` empty clears the cookie. */
  cookie(secret: string): string {
    const base = `${CONSOLE_COOKIE}=${secret}; HttpOnly; Secure; SameSite=Strict; Path=/`;
    return secret === '' ? `${base}; Max-Age=0` : `${base}; Max-Age=${Math.floor(this.absoluteMs / 1000)}`;
  }

  #reply(record: ConsoleSessionRecord, secret: string): ConsoleSessionReply {
    const idle = new Date(Math.min(Date.parse(record.lastSeenAt) + this.idleMs, Date.parse(record.expiresAt)));
    return {
      user: record.user,
      ...(record.displayName !== undefined ? { displayName: record.displayName } : {}),
      csrfToken: ConsoleSessions.csrfOf(secret),
      expiresAt: record.expiresAt,
      idleExpiresAt: idle.toISOString(),
    };
  }

  /** Whether `user` is a member (directly or through nested groups) of the admin group. */
  async isAdmin(user: string, groups?: readonly { name: string; dn: string }[]): Promise<boolean> {
    const list = groups ?? (await this.#o.directory.groupsOf(user));
    const want = this.#o.adminGroup;
    return list.some((g) => groupMatches(want, g.dn) || groupMatches(want, g.name));
  }

  /**
   * Signs an administrator in: 401 (wrong password or account state), 429 (throttled), 403
   * `not-admin` (not in the admin group), 503 (directory unreachable).
   */
  async signIn(
    user: string,
    password: string,
    source: string,
  ): Promise<{ secret: string; reply: ConsoleSessionReply }> {
    const go = () => this.#o.directory.authenticate(user, password, { source });
    let result: Awaited<ReturnType<ServerDirectory['authenticate']>>;
    try {
      result = this.#o.throttle ? await this.#o.throttle.attempt(user, { source }, go) : await go();
    } catch (err) {
      if (TandemError.is(err) && err.code === 'TANDEM_AUTH' && typeof err.details['reason'] === 'string') {
        const reason = err.details['reason'];
        const status = reason === 'throttled' ? 429 : reason === 'directory-unreachable' ? 503 : 401;
        throw new ApiError(status, 'TANDEM_AUTH', reason, err.message, { retryable: err.retryable, cause: err });
      }
      throw err;
    }
    const name = result.user.name;
    if (!(await this.isAdmin(name, result.groups)))
      throw new ApiError(
        403,
        'TANDEM_AUTH',
        'not-admin',
        `${name} signed in, but only members of the admin group ${this.#o.adminGroup} may use the console.`,
      );
    const now = this.#clock.now();
    const secret = randomBytes(32).toString('base64url');
    const record: ConsoleSessionRecord = {
      id: sha256(secret),
      user: name,
      ...(result.user.displayName !== undefined ? { displayName: result.user.displayName } : {}),
      createdAt: new Date(now).toISOString(),
      lastSeenAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.absoluteMs).toISOString(),
    };
    await this.#o.store.putConsoleSession(record);
    // Sessions that ran out are removed now and then, at sign-in.
    void this.#o.store
      .pruneConsoleSessions(new Date(now).toISOString(), new Date(now - this.idleMs).toISOString())
      .catch(() => undefined);
    return { secret, reply: this.#reply(record, secret) };
  }

  /**
   * The session of a request's cookie, or undefined without a cookie. An unknown, expired or
   * idle session is a 401 (`no-session`, `session-expired`); each use refreshes the idle limit
   * unless `touch` is false (the live stream's checks: an open tab alone keeps no session).
   */
  async find(headers: IncomingHttpHeaders, options: { touch?: boolean } = {}): Promise<ConsoleSession | undefined> {
    const secret = readCookie(headers, CONSOLE_COOKIE);
    if (secret === undefined || secret === '') return undefined;
    const record = await this.#o.store.getConsoleSession(sha256(secret));
    if (!record)
      throw new ApiError(401, 'TANDEM_AUTH', 'no-session', 'This console session is not known; sign in again.');
    const now = this.#clock.now();
    const seen = Date.parse(record.lastSeenAt);
    if (now >= Date.parse(record.expiresAt) || now >= seen + this.idleMs) {
      await this.#o.store.deleteConsoleSession(record.id);
      throw new ApiError(401, 'TANDEM_AUTH', 'session-expired', 'This console session has expired; sign in again.');
    }
    if (options.touch !== false && now - seen >= TOUCH_EVERY_MS) {
      await this.#o.store.touchConsoleSession(record.id, new Date(now).toISOString());
      return { secret, record: { ...record, lastSeenAt: new Date(now).toISOString() } };
    }
    return { secret, record };
  }

  /** The sign-in reply of a found session (the CSRF token again, for a reloaded page). */
  describe(session: ConsoleSession): ConsoleSessionReply {
    return this.#reply(session.record, session.secret);
  }

  /** Refuses a request whose CSRF header is missing or not the session's (403 `csrf`). */
  checkCsrf(session: ConsoleSession, headers: IncomingHttpHeaders): void {
    const given = headers[CSRF_HEADER];
    const want = Buffer.from(ConsoleSessions.csrfOf(session.secret));
    const got = Buffer.from(typeof given === 'string' ? given : '');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      throw new ApiError(
        403,
        'TANDEM_AUTH',
        'csrf',
        `A console request needs the session's CSRF token in the ${CSRF_HEADER} header (from the sign-in reply).`,
      );
  }

  /** Ends a session. */
  async signOut(session: ConsoleSession): Promise<void> {
    await this.#o.store.deleteConsoleSession(session.record.id);
  }
}
