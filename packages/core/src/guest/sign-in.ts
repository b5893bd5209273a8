import { InvalidInputError, InvalidStateError, TandemError } from '../errors.js';
import type { EventContext } from '../events/bus.js';
import type { Workspace } from '../workspace/schema.js';
import type { GuestConnection, GuestEventPublisher } from './connection.js';
import type { SignInResult } from './protocol.js';

/** Options of {@link signInToGuest}. */
export interface GuestSignInOptions {
  readonly connection: GuestConnection;
  /** The workspace: `spec.guestSignIn` must be true. */
  readonly workspace: Workspace;
  /** The name the user signed in to Tandem with. */
  readonly user: string;
  /**
   * The password the user signed in with, as bytes (UTF-8). Zeroed here once the request is
   * answered or failed, so the caller's copy does not outlive the sign-in.
   */
  readonly password: Buffer;
  /** The account's domain in the guest (Windows), when it is not a local account. */
  readonly domain?: string;
  readonly bus?: GuestEventPublisher;
  readonly context?: EventContext;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * Single sign-on into the guest: hands the credentials the user signed in to Tandem with (a
 * `tandem login`, or the host agent's sign-in) to the guest agent over the guest channel, in
 * memory, and the agent signs the user in with the guest's own mechanism (Linux: the guest's
 * PAM helper `unix_chkpwd` against its own shadow file, then the user's session through `su -l`;
 * Windows: `LogonUser`). Only when the workspace asks (`spec.guestSignIn: true`). The password is
 * never written to a file, an event, a log line, argv or the environment here or in the agent;
 * `password` is zeroed before this returns. Publishes `guest.signed-in` or
 * `guest.sign-in-failed` (user and the guest's words, never the password).
 *
 * JavaScript strings cannot be wiped: the request's JSON text holds the password until the
 * garbage collector takes it, on both ends. The bytes this function and the agent own are zeroed.
 *
 * @example
 * ```ts
 * const password = Buffer.from(await readSecret(), 'utf8');
 * const result = await signInToGuest({ connection: conn, workspace, user: 'ana', password, bus });
 * console.log(result.method, result.sessionPid); // "unix_chkpwd+su" 412
 * ```
 */
export async function signInToGuest(options: GuestSignInOptions): Promise<SignInResult> {
  const { connection, workspace, user, password } = options;
  const vm = connection.vm;
  try {
    if (!workspace.spec.guestSignIn) {
      throw new InvalidStateError(
        `Workspace "${workspace.metadata.name}" does not ask for single sign-on into the guest: set spec.guestSignIn: true to hand the user's credentials to its agent.`,
        'guest-sign-in-off',
        { details: { path: 'spec.guestSignIn' } },
      );
    }
    if (!Buffer.isBuffer(password) || password.length === 0) {
      throw new InvalidInputError(
        'The password for the guest sign-in is empty: expected the bytes the user signed in with.',
        {
          details: { user },
        },
      );
    }
    const publish: GuestEventPublisher['publish'] = (type, data) =>
      options.bus?.publish(type, data, options.context ?? {});
    try {
      const result = await connection.signIn(
        { user, ...(options.domain ? { domain: options.domain } : {}), password: password.toString('utf8') },
        {
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        },
      );
      publish('guest.signed-in', {
        vm,
        user: result.user,
        method: result.method,
        message: result.message,
        ...(result.sessionPid !== undefined ? { sessionPid: result.sessionPid } : {}),
      });
      return result;
    } catch (err) {
      publish('guest.sign-in-failed', {
        vm,
        user,
        code: TandemError.is(err) ? err.code : 'TANDEM_GUEST_FAILED',
        message: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  } finally {
    if (Buffer.isBuffer(password)) password.fill(0);
  }
}
