import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** The built `tandem` executable and the relay adapter's build, for a CLI on a real terminal. */
const BIN = fileURLToPath(new URL('../../cli/bin/tandem.js', import.meta.url));
const RELAY_ADAPTER_JS = fileURLToPath(new URL('../dist/relay-adapter.test-helper.js', import.meta.url));

/**
 * Runs `tandem ARGS` on a pseudo-terminal (util-linux `script`), types `keys` once the password
 * prompt is on the screen, and returns everything the terminal showed and the exit code.
 */
function onTerminal(args: readonly string[], keys: string): Promise<{ code: number | null; screen: string }> {
  const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, BIN, '--state-dir', join(cli.dir, 'state'), ...args].map(quote).join(' ');
  const env = { ...process.env };
  delete env['TANDEM_PASSWORD'];
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let screen = '';
  let typed = false;
  child.stdout.on('data', (c: Buffer) => {
    screen += c.toString();
    if (!typed && screen.includes('(signs you in to the guest): ')) {
      typed = true;
      // The prompt and the switch to raw mode (no echo) are one synchronous step of the CLI;
      // a moment's grace covers a CLI descheduled between the two.
      setTimeout(() => child.stdin.write(keys), 300);
    }
  });
  child.stderr.on('data', (c: Buffer) => (screen += c.toString()));
  return new Promise((resolve, reject) => {
    const limit = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tandem on the terminal did not finish; it showed:\n${screen}`));
    }, 180_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(limit);
      child.stdin.destroy();
      resolve({ code, screen });
    });
  });
}

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

describe('tandem up of a spec.guestSignIn workspace on a terminal (no agent)', () => {
  const TERMINAL = 240_000;
  const upArgs = () => [...cli.upArgs('guestSignIn: true', RELAY_ADAPTER_JS), '--user', 'ana'];

  it(
    'asks once without echo, takes a corrected password, checks it against the cache and hands it to the guest',
    async () => {
      // A typo, erased with Backspace, then Enter (a terminal in raw mode sends CR).
      const typo = `${PASSWORD.slice(0, -3)}X`;
      const r = await onTerminal(upArgs(), `${typo}\u007f${PASSWORD.slice(-3)}\r`);
      expect(r.screen).toContain('Password of ana (signs you in to the guest): ');
      // Started, then the guest refused the sign-in: up says so and exits 1.
      expect(r.screen).toMatch(/workspace erp on \S+relay-adapter\S+, VM tandem-erp, running/);
      expect(r.code, r.screen).toBe(1);
      // The guest agent's own refusal: the password passed the cache's check and reached the guest.
      expect(r.screen).toContain('not signed in to the guest: ');
      expect(r.screen).toContain(`no account "ana" in the guest's /etc/passwd`);
      expect(cli.agent.log).toContain('sign-in of ana failed');
      // Nothing typed was echoed, and the password is stored nowhere.
      expect(r.screen).not.toContain(PASSWORD);
      expect(r.screen).not.toContain(typo);
      expect(stateBytes().includes(Buffer.from(PASSWORD))).toBe(false);
    },
    TERMINAL,
  );

  it(
    'refuses a password the cache does not know before anything starts, and cancels on Ctrl-C',
    async () => {
      const wrong = await onTerminal(upArgs(), 'not-her-password\r');
      expect(wrong.code).not.toBe(0);
      expect(wrong.screen).not.toContain('workspace erp on');
      expect(wrong.screen).not.toContain('starting -> running');
      expect(wrong.screen).not.toContain('not-her-password');
      const cancelled = await onTerminal(upArgs(), 'half\u0003');
      expect(cancelled.code).not.toBe(0);
      expect(cancelled.screen).toContain('The password was not given (cancelled).');
      expect(cli.agent.log).not.toContain('sign-in of ana');
      const status = await tandem('--json', 'status');
      expect(JSON.stringify(status.json)).not.toContain('"running"');
    },
    TERMINAL,
  );
});
