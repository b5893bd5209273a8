import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { loopbackSshd, sharedScratchDir } from '../testing/loopback-sshd.js';
import { keyFingerprint } from './known-hosts.js';
import { SshRunner, type SshHostOptions } from './ssh-runner.js';
import { hostileString } from './test-strings.js';

const sshd = await loopbackSshd();
const { gate } = sshd;
const ciDir = sshd.dir;
const key = sshd.privateKeyPath;
const knownHosts = sshd.knownHostsPath;
const echo = fileURLToPath(new URL('./fixtures/argv-echo.cjs', import.meta.url));

// Writable by the remote account, so an injected `touch CANARY` would really create the canary.
const scratch = sharedScratchDir('tandem-ssh-');
const canary = join(scratch, 'CANARY');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const base: SshHostOptions = {
  host: '127.0.0.1',
  port: 2222,
  username: sshd.username,
  privateKeyPath: key,
  knownHostsPath: knownHosts,
};

interface Echo {
  argv: string[];
  stdin: string;
  env: Record<string, string>;
}

describe.skipIf(!gate.enabled)('SshRunner against the sshd on 127.0.0.1:2222', () => {
  const runner = new SshRunner(base);
  afterAll(() => runner.close());

  it('runs only the intended program, with hostile arguments arriving exactly as given', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileString(canary), { maxLength: 5 }), async (args) => {
        const r = await runner.run({ command: process.execPath, args: [echo, ...args] });
        expect(r.exitCode).toBe(0);
        const out = JSON.parse(r.stdout) as Echo;
        expect(out.argv).toEqual(args);
      }),
      // Each run is one remote command (a login-shell-free account: about 0.1 s here, a few
      // times that on a busy machine): 30 runs stay a small fraction of the timeout.
      { numRuns: 30 },
    );
    // Every injected command would have created the canary.
    expect(existsSync(canary)).toBe(false);
  }, 300_000);

  it('shares one connection between many commands, also concurrent ones', async () => {
    const r = new SshRunner(base);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => r.run({ command: process.execPath, args: [echo, String(i)] })),
    );
    await r.run({ command: 'true' });
    expect(r.connectionsOpened).toBe(1);
    await r.close();
    await r.run({ command: 'true' });
    expect(r.connectionsOpened).toBe(2);
    await r.close();
  });

  it('writes stdin, passes environment variables through the quoted command line, returns exit codes', async () => {
    const r = await runner.run({
      command: process.execPath,
      args: [echo],
      input: "pass'word\n",
      env: { TANDEM_X: '$(touch ' + canary + ')', TANDEM_ECHO_EXIT: '4' },
    });
    expect(r.exitCode).toBe(4);
    const out = JSON.parse(r.stdout) as Echo;
    expect(out.stdin).toBe("pass'word\n");
    expect(out.env['TANDEM_X']).toBe('$(touch ' + canary + ')');
    expect(existsSync(canary)).toBe(false);
  });

  it('times out and cancels remote commands, and the remote program is ended', async () => {
    const marker = `slow-${process.pid}-${Date.now()}`;
    const slow = { command: process.execPath, args: [echo, marker], env: { TANDEM_ECHO_SLEEP_MS: '30000' } };
    const t = await runner.run({ ...slow, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(TandemError.is(t, 'TANDEM_TIMEOUT')).toBe(true);
    // sshd runs on this machine, so its processes are visible here.
    // Polls until the remote program is gone; the bound is generous for a busy machine.
    const alive = async (): Promise<boolean> => {
      for (let i = 0; i < 600; i++) {
        if (!execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes(marker)) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    };
    expect(await alive()).toBe(false);
    const ac = new AbortController();
    const pending = runner.run({ ...slow, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    expect(TandemError.is(await pending.catch((e: unknown) => e), 'TANDEM_CANCELLED')).toBe(true);
    // The connection still works afterwards.
    expect((await runner.run({ command: 'true' })).exitCode).toBe(0);
    const started = await runner.start({ ...slow, args: [echo, `${marker}-started`] });
    expect(started.argv).toEqual([process.execPath, echo, `${marker}-started`]);
    started.kill();
    expect(TandemError.is(await started.result.catch((e: unknown) => e), 'TANDEM_CANCELLED')).toBe(true);
  }, 180_000);

  it('accepts a pinned fingerprint instead of known_hosts', async () => {
    const line = readFileSync(knownHosts, 'utf8').trim().split(/\s+/);
    const fp = keyFingerprint(Buffer.from(line[2]!, 'base64'));
    const empty = join(scratch, 'empty_known_hosts');
    writeFileSync(empty, '');
    const r = new SshRunner({ ...base, knownHostsPath: empty, hostKeyFingerprints: [fp] });
    expect((await r.run({ command: 'true' })).exitCode).toBe(0);
    await r.close();
  });

  it('refuses an unknown host key and a changed one, never accepting blindly', async () => {
    const empty = join(scratch, 'unknown_known_hosts');
    writeFileSync(empty, '');
    const unknown = await new SshRunner({ ...base, knownHostsPath: empty })
      .run({ command: 'true' })
      .catch((e: unknown) => e);
    expect(TandemError.is(unknown, 'TANDEM_AUTH')).toBe(true);
    expect((unknown as TandemError).details['reason']).toBe('unknown-host');

    const wrong = join(scratch, 'wrong_known_hosts');
    const other = readFileSync(join(ciDir, 'client_ed25519.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(wrong, `[127.0.0.1]:2222 ${other}\n`);
    const changed = await new SshRunner({ ...base, knownHostsPath: wrong })
      .run({ command: 'true' })
      .catch((e: unknown) => e);
    expect(TandemError.is(changed, 'TANDEM_AUTH')).toBe(true);
    expect((changed as TandemError).details['reason']).toBe('mismatch');

    const pinnedWrong = await new SshRunner({ ...base, knownHostsPath: empty, hostKeyFingerprints: ['SHA256:AAAA'] })
      .run({ command: 'true' })
      .catch((e: unknown) => e);
    expect(TandemError.is(pinnedWrong, 'TANDEM_AUTH')).toBe(true);
  });

  it('reports a refused login as AuthError', async () => {
    const r = new SshRunner({ ...base, username: 'nobody-here' });
    const err = await r.run({ command: 'true' }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_AUTH')).toBe(true);
  });
});
