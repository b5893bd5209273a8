// The examples of docs/identity.md, run as they are written there (the test checks the text).
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BuiltinDirectory,
  CredentialCache,
  MemoryDirectoryRecords,
  SignInError,
  SignInThrottle,
} from '@tandem/core/identity';
import { keysDirOf, openEndpointKeys } from '@tandem/core/crypto';

const DOC = join(import.meta.dirname, '../../../../docs/identity.md');

/** The text between `// example:NAME` and `// end` in this file. */
async function exampleText(name: string): Promise<string> {
  const me = await readFile(import.meta.filename, 'utf8');
  const start = me.indexOf(`// example:${name}\n`);
  const end = me.indexOf('    // end', start);
  return me
    .slice(start + `// example:${name}\n`.length, end)
    .split('\n')
    .map((l) => l.replace(/^ {4}/, ''))
    .join('\n')
    .trimEnd();
}

describe('docs/identity.md examples', () => {
  let stateDir = '';
  afterEach(async () => {
    vi.restoreAllMocks();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('the server side: built-in directory, nested groups, throttled sign-in', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    // example:server
    const records = new MemoryDirectoryRecords(); // the server passes its ServerStore here
    const directory = new BuiltinDirectory(records, { lockout: { maxFailures: 5, durationMs: 15 * 60_000 } });
    const throttle = new SignInThrottle(records);

    await directory.createUser({ name: 'ana', password: 'correct horse battery staple', displayName: 'Ana Archer' });
    await directory.putGroup('erp-users', ['ana']);
    await directory.putGroup('all-staff', ['group:erp-users']);

    const context = { source: '192.0.2.7' };
    const result = await throttle.attempt('ana', context, () =>
      directory.authenticate('ana', 'correct horse battery staple', context),
    );
    console.log(
      result.user.name,
      result.groups.map((g) => g.dn),
    );
    // ana [ 'builtin:group:all-staff', 'builtin:group:erp-users' ]

    try {
      await throttle.attempt('ana', context, () => directory.authenticate('ana', 'not it', context));
    } catch (err) {
      if (SignInError.isRefusal(err)) console.log(err.reason); // bad-credentials
    }
    // end
    expect(log.mock.calls).toEqual([
      ['ana', ['builtin:group:all-staff', 'builtin:group:erp-users']],
      ['bad-credentials'],
    ]);
    expect(await readFile(DOC, 'utf8')).toContain(await exampleText('server'));
  });

  it('the endpoint side: remember an online sign-in, sign in offline, forget', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    stateDir = await mkdtemp(join(tmpdir(), 'tandem-identity-doc-'));
    const online = {
      user: { name: 'ana', dn: 'builtin:ana', state: { disabled: false, locked: false, expired: false } },
      groups: [{ name: 'erp-users', dn: 'builtin:group:erp-users' }],
    };
    // example:endpoint
    const { trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
    const cache = await CredentialCache.open({ stateDir, trustedTime, maxOfflineMs: 14 * 24 * 3600_000 });

    // After an online sign-in (`online` is the server's SignInResult):
    await cache.remember('ana', 'correct horse battery staple', online, { envelopes: ['legacy-erp'] });

    // Later, with no server:
    const offline = await cache.signInOffline('ana', 'correct horse battery staple');
    console.log(offline.offline, offline.groups[0]?.name); // true erp-users

    // At the next contact the server says the account was disabled:
    const forgotten = await cache.reconcile('ana', { disabled: true, locked: false, expired: false });
    console.log(forgotten); // true: credentials and the legacy-erp envelope are gone
    // end
    expect(log.mock.calls).toEqual([[true, 'erp-users'], [true]]);
    expect(await readFile(DOC, 'utf8')).toContain(await exampleText('endpoint'));
  });
});
