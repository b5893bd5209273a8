// The endpoint's credential cache (D's CredentialCache) as `tandem login` and `tandem checkin`
// use it: an online sign-in keeps a verifier, an offline one is checked against it, and a
// check-in's revocation forgets it with the user's envelopes.
import { keysDirOf, openEndpointKeys } from '@tandem/core/crypto';
import { CredentialCache, type CachedSignIn } from '@tandem/core/identity';
import type { AccountState, SignInResult } from '@tandem/core/identity';
import type { CheckInReply, SignInInfo } from '@tandem/core/management';

/** Opens the credential cache of a state directory, on the device's trusted time. */
export async function openCredentialCache(stateDir: string): Promise<CredentialCache> {
  const { trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
  return CredentialCache.open({ stateDir, trustedTime });
}

/** What the server's sign-in reply says, as the cache keeps it. */
export function signInResultOf(info: SignInInfo, now: number): SignInResult {
  const rdn = (dn: string): string => /^[^=]+=([^,]+)/.exec(dn)?.[1] ?? dn;
  return {
    user: {
      name: info.user,
      dn: info.user,
      ...(info.displayName !== undefined ? { displayName: info.displayName } : {}),
      state: {
        disabled: false,
        locked: false,
        expired: false,
        ...(info.passwordExpiresInMs !== undefined
          ? { passwordExpiresAt: new Date(now + info.passwordExpiresInMs).toISOString() }
          : {}),
      },
    },
    groups: info.groups.map((dn) => ({ name: rdn(dn), dn })),
    ...(info.passwordExpiresInMs !== undefined ? { passwordExpiresInMs: info.passwordExpiresInMs } : {}),
  };
}

type Revocation = NonNullable<Extract<CheckInReply, { status: 'changed' }>['revokeCredentials']>;

/** The account state a check-in's revocation stands for (`undefined`: the account is gone). */
export function accountStateOf(revocation: Revocation, now: number): AccountState | undefined {
  switch (revocation.reason) {
    case 'unknown-user':
      return undefined;
    case 'password-changed':
      return { disabled: false, locked: false, expired: false, passwordChangedAt: new Date(now).toISOString() };
    default:
      return {
        disabled: revocation.reason === 'disabled',
        locked: revocation.reason === 'locked',
        expired: revocation.reason === 'expired',
      };
  }
}

export type { CachedSignIn };
