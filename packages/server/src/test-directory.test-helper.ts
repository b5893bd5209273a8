// A small directory for the API's unit tests (not shipped): accounts whose state a test sets,
// and a switch that makes it unreachable like an LDAP server that went away.
import { AuthError, HostError } from '@tandem/core';
import type { AccountStateView, DirectoryGroupView, DirectoryUserView, ServerDirectory } from './directory-port.js';

interface Account {
  password: string;
  state: AccountStateView;
  groups: string[];
}

export class TestDirectory implements ServerDirectory {
  readonly kind = 'test';
  accounts = new Map<string, Account>();
  unreachable = false;
  passwordExpiresInMs: number | undefined;

  add(name: string, password: string, groups: string[] = [], state: Partial<AccountStateView> = {}): void {
    this.accounts.set(name, {
      password,
      groups,
      state: { disabled: false, locked: false, expired: false, ...state },
    });
  }

  set(name: string, state: Partial<AccountStateView>): void {
    const a = this.accounts.get(name);
    if (a) a.state = { ...a.state, ...state };
  }

  #down(): void {
    if (this.unreachable)
      throw new AuthError('The directory ldaps://ldap.test cannot be reached.', {
        retryable: true,
        fault: 'host',
        details: { reason: 'directory-unreachable' },
      });
  }

  #user(name: string, a: Account): DirectoryUserView {
    return { name, dn: `uid=${name},ou=people,dc=test`, state: a.state };
  }

  async authenticate(name: string, password: string) {
    this.#down();
    const a = this.accounts.get(name);
    if (!a || a.password !== password)
      throw new AuthError('The user name or password is incorrect.', { details: { reason: 'bad-credentials' } });
    for (const r of ['disabled', 'locked', 'expired'] as const)
      if (a.state[r]) throw new AuthError(`This account is ${r}.`, { details: { reason: r } });
    return {
      user: this.#user(name, a),
      groups: this.#groups(a),
      passwordExpiresInMs: this.passwordExpiresInMs,
    };
  }

  #groups(a: Account): DirectoryGroupView[] {
    return a.groups.map((g) => ({ name: g, dn: `cn=${g},ou=groups,dc=test` }));
  }

  async findUser(name: string) {
    if (this.unreachable) throw new HostError('The directory cannot be reached.', { retryable: true });
    const a = this.accounts.get(name);
    return a && this.#user(name, a);
  }

  async groupsOf(name: string) {
    if (this.unreachable) throw new HostError('The directory cannot be reached.', { retryable: true });
    const a = this.accounts.get(name);
    return a ? this.#groups(a) : [];
  }
}
