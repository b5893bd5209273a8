import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import {
  AndFilter,
  Change,
  Attribute,
  Client,
  EqualityFilter,
  ExtensibleFilter,
  FilterParser,
  OrFilter,
  PresenceFilter,
  ResultCodeError,
  SubstringFilter,
  type ClientOptions,
  type Filter,
  type SearchOptions,
} from 'ldapts';
import { systemClock, type Clock } from '../clock.js';
import { CancelledError, HostError, InvalidInputError, TandemError } from '../errors.js';
import { DEFAULT_PASSWORD_WARNING_MS } from './builtin.js';
import type { Directory, DirectoryGroup, DirectoryUser, SignInContext, SignInResult } from './directory.js';
import {
  AD_STATE_ATTRIBUTES,
  OPENLDAP_STATE_ATTRIBUTES,
  adAccount,
  adBindRefusal,
  openLdapAccount,
  valueOf,
  valuesOf,
  type LdapEntry,
  type ParsedAccount,
  type PpolicySettings,
} from './ldap-values.js';
import { SignInError } from './sign-in-error.js';

/** AD's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nesting, resolved by the server. */
export const LDAP_MATCHING_RULE_IN_CHAIN = '1.2.840.113556.1.4.1941';

/** The part of an ldapts `Client` the directory uses (a test can pass its own). */
export interface LdapClient {
  bind(dn: string, password?: string): Promise<void>;
  startTLS(options?: ConnectionOptions): Promise<void>;
  search(base: string, options?: SearchOptions): Promise<{ searchEntries: LdapEntry[] }>;
  modify(dn: string, changes: Change | Change[]): Promise<void>;
  unbind(): Promise<void>;
}

/** Options of {@link LdapDirectory}. */
export interface LdapDirectoryOptions {
  /** `ldap://host:389` or `ldaps://host:636`. */
  readonly url: string;
  /** `active-directory` or `openldap` (ppolicy and dynlist). */
  readonly flavor: 'active-directory' | 'openldap';
  /** The service account Tandem searches with (read access to users, groups and their state). */
  readonly bindDn: string;
  readonly bindPassword: string;
  /** Where users and groups are: `DC=corp,DC=example`. */
  readonly baseDn: string;
  readonly userBaseDn?: string | undefined;
  readonly groupBaseDn?: string | undefined;
  /** An administrator's filter for users; default AD `(&(objectCategory=person)(objectClass=user))`, OpenLDAP `(objectClass=inetOrgPerson)`. */
  readonly userFilter?: string | undefined;
  /** The sign-in name attribute; default AD `sAMAccountName`, OpenLDAP `uid`. */
  readonly nameAttribute?: string | undefined;
  /** Groups; default AD `(objectClass=group)`, OpenLDAP `(objectClass=groupOfNames)`. */
  readonly groupFilter?: string | undefined;
  /** OpenLDAP: the ppolicy policy entry for users without `pwdPolicySubentry` (olcPPolicyDefault). */
  readonly passwordPolicyDn?: string | undefined;
  /** AD: the domain's root entry (maxPwdAge, lockoutDuration); default `baseDn`. */
  readonly domainDn?: string | undefined;
  /** Upgrade an `ldap://` connection with StartTLS before anything is sent. */
  readonly startTls?: boolean | undefined;
  /** TLS options for ldaps:// and StartTLS (a private CA: `{ ca: [pem] }`). */
  readonly tlsOptions?: ConnectionOptions | undefined;
  /** Per operation; default 10 s. */
  readonly timeoutMs?: number | undefined;
  /** For the TCP (and TLS) connection; default 5 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** Tell the user when the password expires within this; default 14 days. */
  readonly passwordWarningMs?: number | undefined;
  readonly clock?: Clock | undefined;
  /** Makes the client; default ldapts's `Client`. */
  readonly createClient?: ((options: ClientOptions) => LdapClient) | undefined;
}

const ATTRIBUTE = /^[A-Za-z][A-Za-z0-9-]*$/;
const MAX_NAME = 256;

/**
 * A directory over LDAP or Active Directory, through `ldapts`. Sign-in: the service account
 * finds the user by name (an equality filter built from filter objects: a name is sent as a
 * value, never parsed as filter text), the user's own bind checks the password (an empty one is
 * refused first: it would be an anonymous bind), and the account state is read with the service
 * account, where a refused bind needs telling apart (a ppolicy lock fails with error 49 like a
 * wrong password; AD says why in the bind's diagnostic). Nested groups: AD's
 * LDAP_MATCHING_RULE_IN_CHAIN on `member`; on OpenLDAP the `memberOf` the dynlist overlay
 * computes, followed upwards until no new group appears.
 *
 * An unreachable server, a timeout or a dropped connection is a retryable
 * `directory-unreachable` {@link SignInError}. Each call uses its own connections and closes them.
 *
 * @example
 * ```ts
 * const directory = new LdapDirectory({
 *   url: 'ldaps://dc1.corp.example',
 *   flavor: 'active-directory',
 *   bindDn: 'CN=tandem-svc,OU=Service,DC=corp,DC=example',
 *   bindPassword: process.env.TANDEM_LDAP_PASSWORD ?? '',
 *   baseDn: 'DC=corp,DC=example',
 * });
 * const { user, groups } = await directory.authenticate('ana', password, { source: '192.0.2.7' });
 * ```
 */
export class LdapDirectory implements Directory {
  readonly kind = 'ldap';
  readonly #o: LdapDirectoryOptions;
  readonly #ad: boolean;
  readonly #nameAttr: string;
  readonly #userFilter: Filter;
  readonly #groupFilter: Filter;
  readonly #clock: Clock;
  readonly #open = new Set<LdapClient>();

  constructor(options: LdapDirectoryOptions) {
    this.#o = options;
    this.#ad = options.flavor === 'active-directory';
    this.#nameAttr = options.nameAttribute ?? (this.#ad ? 'sAMAccountName' : 'uid');
    if (!ATTRIBUTE.test(this.#nameAttr))
      throw new InvalidInputError(`"${this.#nameAttr}" is not an LDAP attribute name.`, {
        details: { nameAttribute: this.#nameAttr },
      });
    this.#userFilter = parseFilter(
      options.userFilter ?? (this.#ad ? '(&(objectCategory=person)(objectClass=user))' : '(objectClass=inetOrgPerson)'),
      'userFilter',
    );
    this.#groupFilter = parseFilter(
      options.groupFilter ?? (this.#ad ? '(objectClass=group)' : '(objectClass=groupOfNames)'),
      'groupFilter',
    );
    this.#clock = options.clock ?? systemClock;
  }

  async authenticate(name: string, password: string, context: SignInContext): Promise<SignInResult> {
    if (context.signal?.aborted) throw new CancelledError('The sign-in was cancelled.');
    if (!plausibleName(name) || typeof password !== 'string' || password === '')
      throw new SignInError('bad-credentials');
    return this.#withService(async (svc) => {
      const entry = await this.#findEntry(svc, name);
      if (!entry) {
        // A bind all the same, to a name that is not there, so an unknown name costs what a
        // known one does: timing tells no more than the answer.
        await this.#userBind(`cn=tandem-no-such-user,${this.#userBase()}`, password);
        throw new SignInError('bad-credentials');
      }
      const bind = await this.#userBind(entry.dn, password);
      if (context.signal?.aborted) throw new CancelledError('The sign-in was cancelled.');
      // Read the state again after the bind: ppolicy writes pwdAccountLockedTime on the failure
      // that reaches pwdMaxFailure, and a grace login writes pwdGraceUseTime.
      const fresh = (await this.#readEntry(svc, entry.dn)) ?? entry;
      const now = this.#clock.now();
      const account = await this.#accountOf(svc, fresh, now);
      if (bind !== 'ok') {
        // A refused bind: the directory's own word where it gives one (AD), else the state we read.
        const reason = this.#ad ? (adBindRefusal(bind.message) ?? refusalOf(account)) : refusalOf(account);
        throw new SignInError(reason ?? 'bad-credentials', undefined, {
          lockedUntil: reason === 'locked' ? account.state.lockedUntil : undefined,
        });
      }
      const refused = refusalOf(account);
      if (refused) throw new SignInError(refused, undefined, { lockedUntil: account.state.lockedUntil });
      const user = this.#userOf(fresh, account);
      const groups = await this.#groupsOfEntry(svc, fresh);
      const expires =
        account.state.passwordExpiresAt === undefined ? undefined : Date.parse(account.state.passwordExpiresAt) - now;
      const warn = this.#o.passwordWarningMs ?? DEFAULT_PASSWORD_WARNING_MS;
      return { user, groups, passwordExpiresInMs: expires !== undefined && expires <= warn ? expires : undefined };
    });
  }

  async findUser(name: string): Promise<DirectoryUser | undefined> {
    if (!plausibleName(name)) return undefined;
    return this.#withService(async (svc) => {
      const entry = await this.#findEntry(svc, name);
      return entry && this.#userOf(entry, await this.#accountOf(svc, entry, this.#clock.now()));
    });
  }

  async groupsOf(name: string): Promise<readonly DirectoryGroup[]> {
    if (!plausibleName(name)) return [];
    return this.#withService(async (svc) => {
      const entry = await this.#findEntry(svc, name);
      return entry ? this.#groupsOfEntry(svc, entry) : [];
    });
  }

  async search(
    text: string,
    options: { limit?: number } = {},
  ): Promise<{ users: DirectoryUser[]; groups: DirectoryGroup[] }> {
    const limit = Math.max(1, Math.min(options.limit ?? 50, 1000));
    const now = this.#clock.now();
    const contains = (attribute: string): Filter =>
      text === '' ? new PresenceFilter({ attribute }) : new SubstringFilter({ attribute, any: [text] });
    return this.#withService(async (svc) => {
      const users = await this.#search(svc, this.#userBase(), {
        filter: new AndFilter({
          filters: [
            this.#userFilter,
            new OrFilter({ filters: [contains(this.#nameAttr), contains('displayName'), contains('cn')] }),
          ],
        }),
        attributes: this.#userAttributes(),
        sizeLimit: limit,
      });
      const groups = await this.#search(svc, this.#groupBase(), {
        filter: new AndFilter({
          filters: [this.#groupFilter, new OrFilter({ filters: [contains('cn'), contains('description')] })],
        }),
        attributes: ['cn', 'description'],
        sizeLimit: limit,
      });
      const found: DirectoryUser[] = [];
      for (const e of users)
        if (valueOf(e, this.#nameAttr) !== undefined) found.push(this.#userOf(e, await this.#accountOf(svc, e, now)));
      return {
        users: found.sort((a, b) => a.name.localeCompare(b.name)),
        groups: groups.map(groupOf).sort((a, b) => a.name.localeCompare(b.name)),
      };
    });
  }

  /**
   * Changes a user's password bound as that user (what a user's own change does: ppolicy records
   * `pwdChangedTime`). On AD use the domain's own tools; AD wants `unicodePwd` over TLS.
   */
  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<void> {
    if (!plausibleName(name) || oldPassword === '' || newPassword === '') throw new SignInError('bad-credentials');
    const entry = await this.#withService((svc) => this.#findEntry(svc, name));
    if (!entry) throw new SignInError('bad-credentials');
    const client = await this.#connect();
    try {
      await this.#call(() => client.bind(entry.dn, oldPassword), true);
      await this.#call(() =>
        client.modify(
          entry.dn,
          new Change({
            operation: 'replace',
            modification: new Attribute({ type: 'userPassword', values: [newPassword] }),
          }),
        ),
      );
    } finally {
      await this.#release(client);
    }
  }

  /**
   * Closes the connections of calls still running (each call opens and closes its own; nothing
   * stays open between calls). Later calls open new ones.
   */
  async close(): Promise<void> {
    const open = [...this.#open];
    this.#open.clear();
    await Promise.all(open.map((c) => c.unbind().catch(() => undefined)));
  }

  async #release(client: LdapClient): Promise<void> {
    this.#open.delete(client);
    await client.unbind().catch(() => undefined);
  }

  async #withService<T>(body: (svc: LdapClient) => Promise<T>): Promise<T> {
    const svc = await this.#connect();
    try {
      try {
        await svc.bind(this.#o.bindDn, this.#o.bindPassword);
      } catch (err) {
        if (err instanceof ResultCodeError)
          throw new HostError(
            `The directory ${this.#o.url} refused Tandem's service account ${this.#o.bindDn} (LDAP result ${err.code}). Check the service account's DN and password.`,
            { cause: err, details: { reason: 'service-account-refused', url: this.#o.url, ldapCode: err.code } },
          );
        throw unreachable(this.#o.url, err);
      }
      return await body(svc);
    } finally {
      await this.#release(svc);
    }
  }

  async #connect(): Promise<LdapClient> {
    const options: ClientOptions = {
      url: this.#o.url,
      timeout: this.#o.timeoutMs ?? 10_000,
      connectTimeout: this.#o.connectTimeoutMs ?? 5_000,
      // Only for ldaps://: ldapts opens TLS at once whenever tlsOptions is set, which a plain
      // port awaiting StartTLS drops.
      ...(this.#o.tlsOptions && /^ldaps:/i.test(this.#o.url) ? { tlsOptions: { ...this.#o.tlsOptions } } : {}),
    };
    const client = this.#o.createClient
      ? this.#o.createClient(options)
      : (new Client(options) as unknown as LdapClient);
    this.#open.add(client);
    if (this.#o.startTls) {
      try {
        // A fresh object each time (ldapts writes the socket into it), with the URL's host, so
        // the certificate is checked against the name connected to.
        const host = new URL(this.#o.url).hostname.replace(/^\[(.*)\]$/, '$1');
        await client.startTLS({ host, ...(isIP(host) ? {} : { servername: host }), ...this.#o.tlsOptions });
      } catch (err) {
        await this.#release(client);
        if (err instanceof ResultCodeError)
          throw new HostError(`The directory ${this.#o.url} refused StartTLS (LDAP result ${err.code}).`, {
            cause: err,
            details: { reason: 'starttls-refused', url: this.#o.url },
          });
        throw unreachable(this.#o.url, err);
      }
    }
    return client;
  }

  /** Binds as the user on a connection of its own: 'ok', or the refusal's message. */
  async #userBind(dn: string, password: string): Promise<'ok' | { message: string }> {
    const client = await this.#connect();
    try {
      await client.bind(dn, password);
      return 'ok';
    } catch (err) {
      if (err instanceof ResultCodeError && err.code === 49) return { message: err.message };
      if (err instanceof ResultCodeError)
        throw new SignInError('bad-credentials', undefined, { cause: err, details: { ldapCode: err.code } });
      throw unreachable(this.#o.url, err);
    } finally {
      await this.#release(client);
    }
  }

  async #call<T>(op: () => Promise<T>, bindRefusalIsBadCredentials = false): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ResultCodeError) {
        if (bindRefusalIsBadCredentials && err.code === 49)
          throw new SignInError('bad-credentials', undefined, { cause: err });
        throw new HostError(
          `The directory ${this.#o.url} refused the request (LDAP result ${err.code}): ${err.message}`,
          {
            cause: err,
            details: { url: this.#o.url, ldapCode: err.code },
          },
        );
      }
      throw unreachable(this.#o.url, err);
    }
  }

  #search(svc: LdapClient, base: string, options: SearchOptions): Promise<LdapEntry[]> {
    return this.#call(async () => {
      try {
        return (await svc.search(base, { scope: 'sub', ...options })).searchEntries;
      } catch (err) {
        // 32 noSuchObject: the base is not there; 4 sizeLimitExceeded: what came back is enough.
        if (err instanceof ResultCodeError && err.code === 32) return [];
        throw err;
      }
    });
  }

  async #findEntry(svc: LdapClient, name: string): Promise<LdapEntry | undefined> {
    const found = await this.#search(svc, this.#userBase(), {
      filter: new AndFilter({
        filters: [this.#userFilter, new EqualityFilter({ attribute: this.#nameAttr, value: name })],
      }),
      attributes: this.#userAttributes(),
      sizeLimit: 2,
    });
    // Two entries for one name is a directory problem; signing either in would be a guess.
    return found.length === 1 ? found[0] : undefined;
  }

  async #readEntry(svc: LdapClient, dn: string): Promise<LdapEntry | undefined> {
    const found = await this.#search(svc, dn, { scope: 'base', attributes: this.#userAttributes() });
    return found[0];
  }

  #userAttributes(): string[] {
    const state = this.#ad ? AD_STATE_ATTRIBUTES : OPENLDAP_STATE_ATTRIBUTES;
    return [this.#nameAttr, 'displayName', 'cn', 'mail', ...state, ...(this.#ad ? [] : ['memberOf'])];
  }

  async #accountOf(svc: LdapClient, entry: LdapEntry, now: number): Promise<ParsedAccount> {
    if (this.#ad) {
      const domainDn = this.#o.domainDn ?? this.#o.baseDn;
      const [domain] = await this.#search(svc, domainDn, {
        scope: 'base',
        attributes: ['maxPwdAge', 'lockoutDuration'],
      });
      return adAccount(
        entry,
        {
          maxPwdAge: domain && valueOf(domain, 'maxPwdAge'),
          lockoutDuration: domain && valueOf(domain, 'lockoutDuration'),
        },
        now,
      );
    }
    const policyDn = valueOf(entry, 'pwdPolicySubentry') ?? this.#o.passwordPolicyDn;
    let policy: PpolicySettings = {};
    if (policyDn) {
      const [p] = await this.#search(svc, policyDn, {
        scope: 'base',
        attributes: ['pwdMaxAge', 'pwdLockoutDuration', 'pwdGraceAuthNLimit'],
      });
      const num = (a: string): number | undefined => {
        const v = p && valueOf(p, a);
        return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
      };
      if (p)
        policy = {
          pwdMaxAge: num('pwdMaxAge'),
          pwdLockoutDuration: num('pwdLockoutDuration'),
          pwdGraceAuthNLimit: num('pwdGraceAuthNLimit'),
        };
    }
    return openLdapAccount(entry, policy, now);
  }

  async #groupsOfEntry(svc: LdapClient, entry: LdapEntry): Promise<DirectoryGroup[]> {
    if (this.#ad) {
      const groups = await this.#search(svc, this.#groupBase(), {
        filter: new AndFilter({
          filters: [
            this.#groupFilter,
            new ExtensibleFilter({ rule: LDAP_MATCHING_RULE_IN_CHAIN, matchType: 'member', value: entry.dn }),
          ],
        }),
        attributes: ['cn', 'description'],
      });
      return groups.map(groupOf).sort(byName);
    }
    // OpenLDAP: dynlist computes memberOf (nested with `@groupOfNames*`); follow each group's own
    // memberOf too, so a dynlist without nesting still gives every level. A group seen is not
    // read again: cycles end.
    const found = new Map<string, DirectoryGroup>();
    let frontier = valuesOf(entry, 'memberOf');
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const dn of frontier) {
        if (found.has(dn.toLowerCase())) continue;
        const [g] = await this.#search(svc, dn, {
          scope: 'base',
          filter: this.#groupFilter,
          attributes: ['cn', 'description', 'memberOf'],
        });
        if (!g) continue;
        found.set(dn.toLowerCase(), groupOf(g));
        next.push(...valuesOf(g, 'memberOf'));
      }
      frontier = next;
    }
    return [...found.values()].sort(byName);
  }

  #userOf(entry: LdapEntry, account: ParsedAccount): DirectoryUser {
    return {
      name: valueOf(entry, this.#nameAttr) ?? '',
      dn: entry.dn,
      displayName: valueOf(entry, 'displayName') ?? valueOf(entry, 'cn'),
      mail: valueOf(entry, 'mail'),
      state: account.state,
    };
  }

  #userBase(): string {
    return this.#o.userBaseDn ?? this.#o.baseDn;
  }
  #groupBase(): string {
    return this.#o.groupBaseDn ?? this.#o.baseDn;
  }
}

function refusalOf(a: ParsedAccount): SignInError['reason'] | undefined {
  if (a.state.disabled) return 'disabled';
  if (a.state.expired) return 'expired';
  if (a.state.locked) return 'locked';
  if (a.passwordExpired) return 'password-expired';
  if (a.mustChangePassword) return 'must-change-password';
  return undefined;
}

function groupOf(e: LdapEntry): DirectoryGroup {
  return { name: valueOf(e, 'cn') ?? e.dn, dn: e.dn, description: valueOf(e, 'description') };
}

const byName = (a: DirectoryGroup, b: DirectoryGroup): number => a.name.localeCompare(b.name);

/** Names a directory could hold: not empty, not too long, no control characters. */
function plausibleName(name: unknown): name is string {
  // eslint-disable-next-line no-control-regex
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_NAME && !/[\u0000-\u001f\u007f]/.test(name);
}

function parseFilter(text: string, what: string): Filter {
  try {
    return FilterParser.parseString(text);
  } catch (err) {
    throw new InvalidInputError(`The LDAP ${what} "${text}" is not a valid filter: ${(err as Error).message}`, {
      cause: err,
      details: { [what]: text },
    });
  }
}

function unreachable(url: string, err: unknown): TandemError {
  if (TandemError.is(err)) return err;
  return new SignInError(
    'directory-unreachable',
    `The directory server ${url} cannot be reached (${(err as Error)?.message ?? String(err)}). Online sign-in is not possible; try again later, and keep working offline where your lease allows.`,
    { cause: err, details: { url } },
  );
}
