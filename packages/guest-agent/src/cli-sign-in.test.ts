import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keysDirOf, openEndpointKeys } from '@tandem/core/crypto';
import { CredentialCache } from '@tandem/core/identity';
import { cliRelayPerTest } from './cli-relay.test-helper.js';

// `tandem guest sign-in` end to end on the mock hypervisor whose guest channel reaches a real
// agent process (as cli.test.ts): the password is checked against the device's cached verifier
// (what tandem login keeps) before it goes to the guest; this agent's scratch /etc has no account,
// so the guest refuses, in its own words, and the password appears in no stored event.
const PASSWORD = 'ana-cached-Passw0rd';

const cli = cliRelayPerTest('tandem-guest-sign-in-');
const tandem = cli.tandem;
const up = (guestSignIn: boolean) => cli.up(`guestSignIn: ${guestSignIn}`);

beforeEach(async () => {
  // What tandem login leaves: the verifier of ana's password in the credential cache.
  const stateDir = join(cli.dir, 'state');
  const { trustedTime } = await openEndpointKeys(keysDirOf(stateDir));
  const cache = await CredentialCache.open({ stateDir, trustedTime });
  await cache.remember('ana', PASSWORD, {
    user: { name: 'ana', dn: 'uid=ana', state: { disabled: false, locked: false, expired: false } },
    groups: [],
  });
});

afterEach(() => {
  delete process.env['TANDEM_PASSWORD'];
});

/** Every byte the state directory holds (the event store, the records, the cache). */
function stateBytes(): Buffer {
  const chunks: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) chunks.push(readFileSync(p));
    }
  };
  walk(join(cli.dir, 'state'));
  return Buffer.concat(chunks);
}

describe('tandem guest sign-in', () => {
  it('is refused when the workspace does not ask for it', async () => {
    await up(false);
    process.env['TANDEM_PASSWORD'] = PASSWORD;
    const r = await tandem('guest', 'sign-in', '--user', 'ana');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('spec.guestSignIn: true');
  });

  it('a password Tandem would refuse never reaches the guest', async () => {
    // With no terminal and no --password-stdin, up starts the workspace and leaves the sign-in.
    const started = await up(true);
    expect(started.stdout).toContain('not signed in to the guest: no terminal to ask for the password on');
    process.env['TANDEM_PASSWORD'] = 'not-it';
    const r = await tandem('--json', 'guest', 'sign-in', '--user', 'ana');
    expect(r.code).not.toBe(0);
    expect(cli.agent.log).not.toContain('sign-in of ana');
    const events = await tandem('--json', 'events', '-t', 'guest.sign-in-failed');
    expect(JSON.parse(events.stdout)).toEqual({ events: [] });
  });

  it("the cached user's password goes to the agent, which answers in the guest's words; it is stored nowhere", async () => {
    await up(true);
    process.env['TANDEM_PASSWORD'] = PASSWORD;
    const r = await tandem('guest', 'sign-in', '--user', 'ana', '--timeout', 'PT60S');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`no account "ana" in the guest's /etc/passwd`);
    expect(cli.agent.log).toContain('sign-in of ana failed');
    const events = await tandem('--json', 'events', '-t', 'guest.sign-in-failed');
    expect((JSON.parse(events.stdout) as { events: Array<{ data: unknown }> }).events[0]?.data).toMatchObject({
      user: 'ana',
    });
    expect(stateBytes().includes(Buffer.from(PASSWORD))).toBe(false);
    expect(cli.agent.log).not.toContain(PASSWORD);
  });
});
