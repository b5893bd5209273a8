/**
 * The directory contract: where users, their passwords, their account state and their groups
 * come from. Two implementations pass one shared suite: LDAP / Active Directory (`ldapts`) and
 * the built-in directory kept in the management server's own store.
 */

/** Why a sign-in was refused. Stable strings: the server, the CLI and the console show them. */
export type SignInRefusal =
  | 'bad-credentials'
  | 'disabled'
  | 'locked'
  | 'expired'
  | 'password-expired'
  | 'must-change-password'
  | 'throttled'
  | 'directory-unreachable'
  /** The endpoint's cached credentials are past their offline validity: sign in online. */
  | 'offline-expired';

/** The account state a directory reports for a user, whatever the directory's own words. */
export interface AccountState {
  readonly disabled: boolean;
  /** Locked out (after failed attempts, or by an administrator); until when, where known. */
  readonly locked: boolean;
  readonly lockedUntil?: string | undefined;
  /** The account itself has expired (AD accountExpires, shadowExpire, the built-in record). */
  readonly expired: boolean;
  /** When the password was last changed (ISO 8601), where the directory says. */
  readonly passwordChangedAt?: string | undefined;
  /** When the password expires (ISO 8601), where it does. */
  readonly passwordExpiresAt?: string | undefined;
}

/** A user as the directory knows them. */
export interface DirectoryUser {
  /** The sign-in name (sAMAccountName, uid, or the built-in name). */
  readonly name: string;
  /** The directory's own id: an LDAP DN, or `builtin:NAME`. */
  readonly dn: string;
  readonly displayName?: string | undefined;
  readonly mail?: string | undefined;
  readonly state: AccountState;
}

/** A group as the directory knows it. */
export interface DirectoryGroup {
  readonly name: string;
  readonly dn: string;
  readonly description?: string | undefined;
}

/** The outcome of a sign-in that the directory accepted. */
export interface SignInResult {
  readonly user: DirectoryUser;
  /** Every group the user is in, nested membership resolved, by DN (what assignments name). */
  readonly groups: readonly DirectoryGroup[];
  /** Set when the password expires soon: the user is told (MED-V offered a change). */
  readonly passwordExpiresInMs?: number | undefined;
}

/** Where a sign-in attempt came from, for throttling and audit. */
export interface SignInContext {
  /** The client's address, or `local` for an offline endpoint attempt. */
  readonly source: string;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A directory. Every method rejects with a `TandemError`: a `SignInError` (an `AuthError`, code
 * `TANDEM_AUTH`, from `./sign-in-error.ts`) whose `reason` is a {@link SignInRefusal} for a
 * refused sign-in, and a retryable `SignInError` with reason `directory-unreachable` for a
 * directory that cannot be reached (`retryable: true`, `fault: 'host'`).
 */
export interface Directory {
  /** `ldap` or `builtin`. */
  readonly kind: string;
  /** Checks the password and the account state; resolves nested groups. */
  authenticate(name: string, password: string, context: SignInContext): Promise<SignInResult>;
  /** A user by sign-in name, or undefined. */
  findUser(name: string): Promise<DirectoryUser | undefined>;
  /** Every group `name` is in, nested membership resolved. */
  groupsOf(name: string): Promise<readonly DirectoryGroup[]>;
  /** Users and groups whose name or display name contains `text` (the console's search). */
  search(text: string, options?: { limit?: number }): Promise<{ users: DirectoryUser[]; groups: DirectoryGroup[] }>;
  close?(): Promise<void>;
}
