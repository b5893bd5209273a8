import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestOperationError } from '@tandem/core/guest';
import type { ProgramRunner, RunResult } from './run.js';
import { linuxSignIn, parsePasswd } from './sign-in-linux.js';
import { SIGN_IN_SCRIPT, windowsSignIn } from './sign-in-windows.js';

const PASSWORD = 'c0rrect horse';
const signal = new AbortController().signal;
let dir: string;

interface Call {
  command: string;
  args: readonly string[];
  /** The very Buffer handed to the program, as it is after the call settled. */
  input: Buffer | undefined;
  /** What the program read, copied while it ran. */
  read: string;
}

function runner(result: (input: string) => Partial<RunResult>): { run: ProgramRunner; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    run: async (command, args, options = {}) => {
      const input = Buffer.isBuffer(options.input) ? options.input : undefined;
      const read = String(options.input ?? '');
      calls.push({ command, args, input, read });
      return { exitCode: 0, stdout: '', stderr: '', truncated: false, ...result(read) };
    },
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-sign-in-'));
  mkdirSync(join(dir, 'etc', 'tandem'), { recursive: true });
  mkdirSync(join(dir, 'sbin'));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nana:x:1000:1000:Ana:/home/ana:/bin/sh\n');
  writeFileSync(join(dir, 'sbin', 'unix_chkpwd'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(dir, 'sbin', 'unix_chkpwd'), 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Linux sign-in: unix_chkpwd, then su -l', () => {
  const paths = (): { proc: string; etc: string } => ({ proc: join(dir, 'proc'), etc: join(dir, 'etc') });
  // unix_chkpwd: 0 for the right password (read up to its NUL), 7 (PAM_AUTH_ERR) otherwise.
  const chkpwd = (input: string): Partial<RunResult> => ({ exitCode: input === `${PASSWORD}\0` ? 0 : 7 });

  it('parses /etc/passwd', () => {
    expect(parsePasswd('ana:x:1000:1000:Ana:/home/ana:/bin/sh\nbad line\n')).toEqual([
      { name: 'ana', uid: 1000, gid: 1000, home: '/home/ana', shell: '/bin/sh' },
    ]);
  });

  it('checks the password on stdin (never argv), zeroes its copy, and starts the session as the user', async () => {
    writeFileSync(join(dir, 'etc', 'tandem', 'session'), '#!/bin/sh\n');
    chmodSync(join(dir, 'etc', 'tandem', 'session'), 0o755);
    const { run, calls } = runner(chkpwd);
    const started: Array<{ command: string; args: readonly string[] }> = [];
    const signIn = linuxSignIn(paths(), run, async (command, args) => (started.push({ command, args }), 4242), [
      join(dir, 'sbin', 'unix_chkpwd'),
    ]);
    const password = Buffer.from(PASSWORD);
    const r = await signIn.signIn('ana', undefined, password, signal);
    expect(r).toMatchObject({ user: 'ana', method: 'unix_chkpwd+su', sessionPid: 4242 });
    expect(calls[0]!.args).toEqual(['ana', 'nonull']);
    expect(calls[0]!.read).toBe(`${PASSWORD}\0`);
    expect(calls[0]!.input!.every((b) => b === 0)).toBe(true);
    expect(started).toEqual([{ command: 'su', args: ['-l', 'ana', '-c', join(dir, 'etc', 'tandem', 'session')] }]);
    for (const s of [JSON.stringify(calls.map((c) => c.args)), JSON.stringify(started), r.message])
      expect(s).not.toContain(PASSWORD);
  });

  it('a wrong password is refused (not retryable) in the guest words, without the password', async () => {
    const { run } = runner(chkpwd);
    const signIn = linuxSignIn(paths(), run, async () => 1, [join(dir, 'sbin', 'unix_chkpwd')]);
    const err = await signIn.signIn('ana', undefined, Buffer.from('guess'), signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as GuestOperationError).retryable).toBe(false);
    expect((err as GuestOperationError).message).toContain('refused the password of "ana"');
    expect((err as GuestOperationError).message).not.toContain('guess');
  });

  it('without a session command the credentials are checked and the result says no session started', async () => {
    const { run } = runner(chkpwd);
    const r = await linuxSignIn(paths(), run, async () => 1, [join(dir, 'sbin', 'unix_chkpwd')]).signIn(
      'ana',
      undefined,
      Buffer.from(PASSWORD),
      signal,
    );
    expect(r.method).toBe('unix_chkpwd');
    expect(r.sessionPid).toBeUndefined();
    expect(r.message).toContain('no session was started');
  });

  it('an unknown account, a domain account and a missing unix_chkpwd each fail clearly', async () => {
    const { run } = runner(chkpwd);
    const helper = [join(dir, 'sbin', 'unix_chkpwd')];
    await expect(
      linuxSignIn(paths(), run, async () => 1, helper).signIn('bob', undefined, Buffer.from('x'), signal),
    ).rejects.toThrow(/no account "bob" in the guest's \/etc\/passwd/);
    await expect(
      linuxSignIn(paths(), run, async () => 1, helper).signIn('ana', 'CORP', Buffer.from('x'), signal),
    ).rejects.toThrow(/local accounts of \/etc\/passwd only/);
    await expect(
      linuxSignIn(paths(), run, async () => 1, [join(dir, 'nowhere')]).signIn(
        'ana',
        undefined,
        Buffer.from('x'),
        signal,
      ),
    ).rejects.toThrow(/install libpam-modules-bin/);
  });
});

describe('Windows sign-in: LogonUserW from PowerShell, values as data (recorded outputs)', () => {
  const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'ps51', name), 'utf8');
  const decode = (encoded: string): string => Buffer.from(encoded, 'base64').toString('utf16le');

  it('passes user, domain and password as JSON on stdin, never in the script, and zeroes the bytes', async () => {
    const { run, calls } = runner(() => ({ stdout: fixture('sign-in-ok.stdout') }));
    const r = await windowsSignIn(run).signIn('ana', 'CORP', Buffer.from(PASSWORD), signal);
    expect(r).toMatchObject({ user: 'ana', method: 'LogonUser' });
    expect(r.message).toContain('CORP\\ana verified by LogonUser');
    const script = decode(calls[0]!.args.at(-1)!);
    expect(script).toBe(SIGN_IN_SCRIPT);
    expect(script).not.toContain(PASSWORD);
    expect(JSON.parse(calls[0]!.read)).toEqual({ user: 'ana', domain: 'CORP', password: PASSWORD });
    expect(calls[0]!.input!.every((b) => b === 0)).toBe(true);
  });

  it("a wrong password is refused with Windows' own words (ERROR_LOGON_FAILURE 1326)", async () => {
    const { run } = runner(() => ({ exitCode: 1, stderr: fixture('sign-in-wrong.stderr') }));
    const err = await windowsSignIn(run)
      .signIn('ana', undefined, Buffer.from('guess'), signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as GuestOperationError).message).toBe('ana: The user name or password is incorrect.');
    expect((err as GuestOperationError).retryable).toBe(false);
  });
});
