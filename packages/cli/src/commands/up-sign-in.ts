// `tandem up` of a workspace with spec.guestSignIn: the password the user signed in to Tandem
// with, asked once (or read with --password-stdin) and checked against this device's cached
// verifier, then handed to the running agent or, in-process, to the guest agent once it says hello.
import { userInfo } from 'node:os';
import { TandemError, type EventBus, type EventContext, type HypervisorAdapter, type Workspace } from '@tandem/core';
import { GuestConnection, signInToGuest, type SignInResult } from '@tandem/core/guest';
import type { CliContext } from '../context.js';
import { openCredentialCache } from './login-cache.js';
import { promptSecret, readEndpointConfig, readSecret } from './login.js';

/** The credentials for the guest sign-in: the password as bytes, for the caller to wipe. */
export interface GuestSignInCredentials {
  readonly user: string;
  readonly password: Buffer;
}

/**
 * Asks once for the password of the user signed in to Tandem on this device (the user of the last
 * `tandem login`, else `--user`, else the host user), on the terminal without echo or with
 * `--password-stdin`, and checks it against the cached verifier, so a password Tandem would refuse
 * never reaches a guest. Never from argv or the environment.
 */
export async function guestSignInCredentials(
  ctx: CliContext,
  opts: { user?: string | undefined; passwordStdin?: boolean | undefined },
): Promise<GuestSignInCredentials> {
  const user =
    opts.user ?? (await readEndpointConfig(ctx.stateDir).catch(() => undefined))?.user ?? userInfo().username;
  const text = opts.passwordStdin
    ? await readSecret({ passwordStdin: true })
    : await promptSecret(`Password of ${user} (signs you in to the guest): `);
  const cache = await openCredentialCache(ctx.stateDir);
  const signedIn = await cache.signInOffline(user, text);
  return { user: signedIn.user.name, password: Buffer.from(text, 'utf8') };
}

/** What the in-process sign-in came to, as `tandem up` reports it. */
export type UpSignInOutcome =
  | { readonly status: 'signed-in'; readonly result: SignInResult }
  | { readonly status: 'failed'; readonly code: string; readonly message: string }
  /** Not tried: no terminal to ask for the password on and no --password-stdin (a script's up). */
  | { readonly status: 'skipped'; readonly message: string };

/**
 * Signs the user in to the guest of a VM `tandem up` just started in-process: waits for the guest
 * agent's hello (up to `timeoutMs`), then {@link signInToGuest} once. The password's bytes are
 * zeroed whatever happens; a failure is reported (and published as `guest.sign-in-failed`), not thrown.
 */
export async function signInAfterStart(o: {
  adapter: HypervisorAdapter;
  vm: string;
  workspace: Workspace;
  credentials: GuestSignInCredentials;
  events: EventBus;
  context: EventContext;
  timeoutMs: number;
}): Promise<UpSignInOutcome> {
  const conn = new GuestConnection({
    adapter: o.adapter,
    vm: o.vm,
    bus: o.events,
    context: o.context,
    software: { name: '@tandem/cli', version: '0.1.0' },
  });
  try {
    await conn.open({ timeoutMs: o.timeoutMs });
    const result = await signInToGuest({
      connection: conn,
      workspace: o.workspace,
      user: o.credentials.user,
      password: o.credentials.password,
      bus: o.events,
      context: o.context,
    });
    return { status: 'signed-in', result };
  } catch (err) {
    return {
      status: 'failed',
      code: TandemError.is(err) ? err.code : 'TANDEM_GUEST_FAILED',
      message: err instanceof Error ? err.message : String(err),
    };
  } finally {
    o.credentials.password.fill(0);
    await conn.close();
  }
}
