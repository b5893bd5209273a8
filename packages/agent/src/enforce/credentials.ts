import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Clock } from '@tandem/core';
import { UnlockThrottledError } from './errors.js';

/** The outcome of one credential check. */
export interface CredentialResult {
  readonly ok: boolean;
  /** Whose credentials were checked. */
  readonly user: string;
  /** How (`local-password`, `directory`, ...). */
  readonly method: string;
  /** Why not, when refused. */
  readonly reason?: string;
}

/** Checks the user's credentials before a locked session is unlocked. */
export interface CredentialCheck {
  verify(password: string): Promise<CredentialResult>;
}

/** Options of {@link unixPasswordCheck}. */
export interface UnixPasswordCheckOptions {
  /** Whose password (default: the user this process runs as; unix_chkpwd refuses others unless root). */
  user?: string;
  /** The helper (default `/usr/sbin/unix_chkpwd`, else `/sbin/unix_chkpwd`). */
  helper?: string;
  /**
   * Run the helper as this user (only a root process can): a privileged service checking for the
   * user it serves, as the user's own agent would.
   */
  runAs?: { uid: number; gid: number };
}

/** Where Debian's libpam-modules-bin installs pam_unix's password helper. */
export function findUnixChkpwd(): string | undefined {
  return ['/usr/sbin/unix_chkpwd', '/sbin/unix_chkpwd'].find((p) => existsSync(p));
}

/**
 * The local password check: pam_unix's setgid-shadow helper `unix_chkpwd`, the same one a
 * screen locker uses through PAM. It is run as `unix_chkpwd <user> nonull`, reads the password
 * from standard input up to a NUL byte, and exits 0 when it matches the user's entry in
 * /etc/shadow (7, PAM_AUTH_ERR, when not). Run by an unprivileged user it checks only that
 * user's own password. No PAM binding is needed, and nothing is stored.
 *
 * @example
 * ```ts
 * const check = unixPasswordCheck();
 * const { ok } = await check.verify(password);
 * ```
 */
export function unixPasswordCheck(options: UnixPasswordCheckOptions = {}): CredentialCheck {
  const user = options.user ?? userInfo().username;
  return {
    verify(password: string): Promise<CredentialResult> {
      const helper = options.helper ?? findUnixChkpwd();
      if (!helper) {
        return Promise.resolve({
          ok: false,
          user,
          method: 'local-password',
          reason: 'unix_chkpwd is not installed (Debian: libpam-modules-bin)',
        });
      }
      return new Promise((resolve) => {
        // stdout and stderr are not read: the helper reports through its exit status alone.
        const child = spawn(helper, [user, 'nonull'], {
          stdio: ['pipe', 'ignore', 'ignore'],
          ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
        });
        child.once('error', (err) =>
          resolve({ ok: false, user, method: 'local-password', reason: `unix_chkpwd could not run: ${err.message}` }),
        );
        child.once('exit', (code) =>
          resolve(
            code === 0
              ? { ok: true, user, method: 'local-password' }
              : {
                  ok: false,
                  user,
                  method: 'local-password',
                  reason: `the password was not accepted (unix_chkpwd exit ${code})`,
                },
          ),
        );
        child.stdin.on('error', () => undefined);
        child.stdin.end(Buffer.concat([Buffer.from(password, 'utf8'), Buffer.from([0])]));
      });
    },
  };
}

/** Options of {@link UnlockThrottle}. */
export interface UnlockThrottleOptions {
  /** Failures allowed before the first delay (default 1: the second failure in a row waits). */
  freeFailures?: number;
  /** The first delay (default 2 s); each further failure doubles it. */
  baseDelayMs?: number;
  /** The longest delay (default 5 min). */
  maxDelayMs?: number;
}

/**
 * A growing delay after failed unlocks, on the injected clock: after `freeFailures` failures in a
 * row, each attempt must wait `baseDelayMs`, doubling with every further failure up to
 * `maxDelayMs`. A success resets it.
 *
 * @example
 * ```ts
 * const throttle = new UnlockThrottle(clock);
 * throttle.check(); // throws UnlockThrottledError while a delay runs
 * throttle.record(false);
 * ```
 */
export class UnlockThrottle {
  readonly #clock: Pick<Clock, 'now'>;
  readonly #free: number;
  readonly #base: number;
  readonly #max: number;
  #failures = 0;
  #notBefore = 0;

  constructor(clock: Pick<Clock, 'now'>, options: UnlockThrottleOptions = {}) {
    this.#clock = clock;
    this.#free = options.freeFailures ?? 1;
    this.#base = options.baseDelayMs ?? 2_000;
    this.#max = options.maxDelayMs ?? 5 * 60_000;
  }

  /** Failures in a row so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until the next attempt is allowed (0: now). */
  get retryInMs(): number {
    return Math.max(0, this.#notBefore - this.#clock.now());
  }

  /** Throws UnlockThrottledError while the delay after the last failure runs. */
  check(): void {
    const wait = this.retryInMs;
    if (wait > 0) {
      throw new UnlockThrottledError(`Too many failed unlock attempts: try again in ${Math.ceil(wait / 1000)} s.`, {
        details: { retryInMs: wait, failures: this.#failures },
      });
    }
  }

  /** Records an attempt's outcome. */
  record(ok: boolean): void {
    if (ok) {
      this.#failures = 0;
      this.#notBefore = 0;
      return;
    }
    this.#failures += 1;
    const over = this.#failures - this.#free;
    if (over > 0) this.#notBefore = this.#clock.now() + Math.min(this.#max, this.#base * 2 ** (over - 1));
  }
}
