/**
 * What the server needs of a directory and a sign-in throttle: the methods of `Directory` and
 * `SignInThrottle` from `@tandem/core/identity` that it calls (LdapDirectory, BuiltinDirectory
 * and SignInThrottle fit as they are).
 */

/** An account's state as a directory reports it. */
export interface AccountStateView {
  readonly disabled: boolean;
  readonly locked: boolean;
  readonly expired: boolean;
  readonly passwordChangedAt?: string | undefined;
  readonly passwordExpiresAt?: string | undefined;
}

/** A user as a directory reports them. */
export interface DirectoryUserView {
  readonly name: string;
  readonly dn: string;
  readonly displayName?: string | undefined;
  readonly state: AccountStateView;
}

/** A group as a directory reports it. */
export interface DirectoryGroupView {
  readonly name: string;
  readonly dn: string;
}

/** The directory calls the server makes. */
export interface ServerDirectory {
  readonly kind: string;
  authenticate(
    name: string,
    password: string,
    context: { source: string; signal?: AbortSignal | undefined },
  ): Promise<{
    user: DirectoryUserView;
    groups: readonly DirectoryGroupView[];
    passwordExpiresInMs?: number | undefined;
  }>;
  findUser(name: string): Promise<DirectoryUserView | undefined>;
  groupsOf(name: string): Promise<readonly DirectoryGroupView[]>;
}

/** The throttle call the server makes around every sign-in. */
export interface ServerSignInThrottle {
  attempt<T>(name: string, context: { source: string }, signIn: () => Promise<T>): Promise<T>;
}
