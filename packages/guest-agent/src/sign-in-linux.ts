import { spawn } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignInResult } from '@tandem/core/guest';
import type { GuestPaths } from './paths.js';
import type { ProgramRunner } from './run.js';
import { guestFailure } from './setup.js';

/** One account of /etc/passwd. */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

/** Signs a user in to this guest with credentials the host handed over (`sign-in`). */
export interface SignInApplier {
  /** `password` is the caller's: it is zeroed by the caller once this settles. */
  signIn(user: string, domain: string | undefined, password: Buffer, signal: AbortSignal): Promise<SignInResult>;
}

/** Starts the user's session process, detached (its own session), and returns its pid. */
export type SessionStarter = (command: string, args: readonly string[]) => Promise<number>;

/** PAM's helper, where Debian, Ubuntu and Fedora put it. */
export const UNIX_CHKPWD = ['/usr/sbin/unix_chkpwd', '/sbin/unix_chkpwd'];

/** The image's session command, run as the user in a login shell. */
export const SESSION_COMMAND = 'tandem/session';

/** `unix_chkpwd`'s exit status for a wrong password (PAM_AUTH_ERR). */
const PAM_AUTH_ERR = 7;

/** Parses /etc/passwd. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0]) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '/', shell: f[6] || '/bin/sh' });
  }
  return out;
}

/** The real session starter: `su -l USER -c COMMAND` in a new session, stdio on /dev/null. */
export const startDetached: SessionStarter = (command, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { detached: true, stdio: 'ignore' });
    child.once('error', reject);
    child.once('spawn', () => {
      child.unref();
      resolve(child.pid!);
    });
  });

/**
 * Single sign-on on Linux, with the guest's own mechanisms:
 * 1. the account must be in the guest's /etc/passwd (a local account, or one sssd/winbind wrote
 *    there: domain accounts that only NSS knows are not looked up);
 * 2. the password is checked by PAM's own helper `unix_chkpwd` against the guest's /etc/shadow
 *    (any scheme the guest's libcrypt knows: yescrypt, SHA-512, ...), given on its stdin, never in
 *    argv; `unix_chkpwd` reads it up to a NUL, as pam_unix writes it;
 * 3. the user's session starts: `su -l USER -c /etc/tandem/session` in a new session (su as root
 *    asks no password; `-l` gives the login environment, the home directory and the groups),
 *    when the image has that command (a desktop image starts its desktop session there).
 * The bytes handed to `unix_chkpwd` are a copy that is zeroed once it has read them.
 */
export function linuxSignIn(
  paths: GuestPaths,
  run: ProgramRunner,
  startSession: SessionStarter = startDetached,
  helpers: readonly string[] = UNIX_CHKPWD,
): SignInApplier {
  return {
    async signIn(user, domain, password, signal) {
      if (domain) {
        throw guestFailure(
          'Domain sign-in is not done on Linux',
          `the Linux agent signs in local accounts of /etc/passwd only; "${domain}\\${user}" names a domain: leave the domain out (sssd lists joined accounts in passwd)`,
          'domain',
          false,
        );
      }
      const passwd = parsePasswd(await readFile(join(paths.etc, 'passwd'), 'utf8').catch(() => ''));
      const account = passwd.find((e) => e.name === user);
      if (!account) {
        throw guestFailure('No such account', `no account "${user}" in the guest's /etc/passwd`, 'no-account', false);
      }
      let helper: string | undefined;
      for (const h of helpers) {
        if (
          await access(h, constants.X_OK).then(
            () => true,
            () => false,
          )
        ) {
          helper = h;
          break;
        }
      }
      if (!helper) {
        throw guestFailure(
          'unix_chkpwd is missing',
          `cannot check the password: PAM's helper unix_chkpwd is not in ${helpers.join(' or ')} (install libpam-modules-bin)`,
          'unix_chkpwd-missing',
          false,
        );
      }
      const input = Buffer.alloc(password.length + 1);
      password.copy(input);
      let r;
      try {
        r = await run(helper, [user, 'nonull'], { input, signal });
      } finally {
        input.fill(0);
      }
      if (r.exitCode === PAM_AUTH_ERR) {
        throw guestFailure(
          'Sign-in refused',
          `the guest refused the password of "${user}" (unix_chkpwd)`,
          'refused',
          false,
        );
      }
      if (r.exitCode !== 0) {
        throw guestFailure(
          'unix_chkpwd failed',
          `unix_chkpwd ${user} exited ${r.exitCode}${r.stderr.trim() ? `: ${r.stderr.trim().slice(0, 500)}` : ''}`,
          `unix_chkpwd-${r.exitCode}`,
        );
      }
      const session = join(paths.etc, SESSION_COMMAND);
      const hasSession = await access(session, constants.X_OK).then(
        () => true,
        () => false,
      );
      if (!hasSession) {
        return {
          user,
          method: 'unix_chkpwd',
          message: `${user} (uid ${account.uid}) verified by unix_chkpwd; this guest has no ${session}, so no session was started`,
        };
      }
      let pid: number;
      try {
        pid = await startSession('su', ['-l', user, '-c', session]);
      } catch (err) {
        throw guestFailure(
          'The session did not start',
          `su -l ${user} -c ${session}: ${(err as Error).message}`,
          'session',
        );
      }
      return {
        user,
        method: 'unix_chkpwd+su',
        message: `${user} (uid ${account.uid}) verified by unix_chkpwd; session ${session} started as ${user} (pid ${pid})`,
        sessionPid: pid,
      };
    },
  };
}
