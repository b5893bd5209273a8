import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { integrationGate } from '@tandem/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findUnixChkpwd, unixPasswordCheck } from './credentials.js';

// A real account with a known password is needed: the test makes one (as root) and removes it.
const gate = await integrationGate(
  'unix_chkpwd',
  () => {
    if (!findUnixChkpwd()) return 'unix_chkpwd is not installed (Debian: libpam-modules-bin)';
    if (process.getuid?.() !== 0) return 'making a test account needs root';
    if (spawnSync('useradd', ['--help']).status !== 0) return 'useradd is missing (Debian: passwd)';
    return null;
  },
  'run as root on a host with libpam-modules-bin and passwd',
);

describe.skipIf(!gate.enabled)('the local password check (pam_unix unix_chkpwd)', () => {
  const user = `tandem-t${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(6).toString('hex')} with spaces`;
  let ids = { uid: 0, gid: 0 };
  beforeAll(() => {
    execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', user]);
    execFileSync('chpasswd', [], { input: `${user}:${password}\n` });
    ids = {
      uid: Number(execFileSync('id', ['-u', user]).toString()),
      gid: Number(execFileSync('id', ['-g', user]).toString()),
    };
  });
  afterAll(() => {
    spawnSync('userdel', [user]);
  });

  it("accepts the user's own password and refuses another, run as that user", async () => {
    const check = unixPasswordCheck({ user, runAs: ids });
    expect(await check.verify(password)).toEqual({ ok: true, user, method: 'local-password' });
    const wrong = await check.verify(`${password}x`);
    expect(wrong).toMatchObject({ ok: false, user });
    expect(wrong.reason).toMatch(/not accepted/);
    expect((await check.verify('')).ok).toBe(false);
  });

  it("an unprivileged user cannot check another user's password", async () => {
    // Run as the test user, asking about root: unix_chkpwd drops its shadow rights and refuses.
    const check = unixPasswordCheck({ user: 'root', runAs: ids });
    expect((await check.verify(password)).ok).toBe(false);
  });
});
