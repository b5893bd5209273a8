// Single sign-on into the real Linux test guest (scripts/test-guest) on real QEMU through the
// libvirt adapter: the host hands the user's credentials to the guest agent over the guest
// channel (signInToGuest, `sign-in`), the agent checks them with the guest's own PAM helper
// unix_chkpwd against the guest's /etc/shadow and starts the user's session with su -l. Then the
// password's bytes are looked for where they must never be: the agent's log (the guest's serial
// console), the host's event store (SQLite, as the CLI keeps it), every process's argv and
// environment in the guest, and the agent's state on the guest's persistent disk.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, parseWorkspace, SqliteEventSink } from '@tandem/core';
import { GuestConnection, GuestOperationError, signInToGuest } from '@tandem/core/guest';
import { LibvirtAdapter } from './adapter.js';
import { itName, purge, QEMU_URI, qemuGate } from './testing/fixtures.test.helpers.js';
import {
  addControlPort,
  consoleLogPath,
  consoleTailOnFailure,
  startUntilHello,
  guestShell,
  prepareTestGuest,
  testGuestGate,
  testGuestSpec,
  type TestGuestFiles,
} from './testing/test-guest.test.helpers.js';

const run = promisify(execFile);
const LONG = 600_000;

const gate = await qemuGate();
const guestGate = gate.enabled ? await testGuestGate() : gate;

/** The user's password: random per run, so finding it anywhere cannot be a coincidence. */
const PASSWORD = `Tandem-${Math.random().toString(36).slice(2, 10)}-sso`;

const workspace = (signIn: boolean) =>
  parseWorkspace(`apiVersion: tandem/v1
kind: Workspace
metadata: { name: test-guest-sso, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  guestSignIn: ${signIn}
`);

describe.skipIf(!guestGate.enabled)('single sign-on into the real test guest', () => {
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
  const vm = itName('guestsso');
  let files: TestGuestFiles;
  let conn: GuestConnection;
  let host: string;
  let store: SqliteEventSink;
  const bus = new EventBus();

  beforeAll(async () => {
    files = await prepareTestGuest(vm);
    host = await mkdtemp(join(tmpdir(), 'tandem-sso-host-'));
    store = new SqliteEventSink(join(host, 'events.sqlite'));
    bus.attach(store);
    await adapter.define(testGuestSpec(vm, files));
    await addControlPort(vm, files.dir);
    conn = new GuestConnection({ adapter, vm, bus, helloTimeoutMs: 30_000, requestTimeoutMs: 120_000 });
    await startUntilHello(adapter, vm, conn, files.dir);
    // A local account in the guest, its password hashed on the host (SHA-512 crypt, read on
    // stdin): only the hash reaches the guest.
    const hashing = run('openssl', ['passwd', '-6', '-stdin']);
    hashing.child.stdin!.end(`${PASSWORD}\n`);
    const hash = (await hashing).stdout.trim();
    expect(hash).toMatch(/^\$6\$/);
    await guestShell(
      vm,
      [
        "echo 'ana:x:1000:1000:Ana:/home/ana:/bin/sh' >>/etc/passwd",
        "echo 'ana:x:1000:' >>/etc/group",
        `echo 'root:*:19000:0:99999:7:::' >/etc/shadow`,
        `echo 'ana:${hash}:19000:0:99999:7:::' >>/etc/shadow`,
        'chmod 600 /etc/shadow',
        'mkdir -p /home/ana && chown 1000:1000 /home/ana',
      ].join('; '),
    );
  }, LONG);

  consoleTailOnFailure(() => files);

  afterAll(async () => {
    await conn?.close();
    store?.close();
    await adapter.close();
    await purge(vm);
    await files?.remove();
    if (host) await rm(host, { recursive: true, force: true });
  });

  it('is refused without spec.guestSignIn, before anything reaches the guest', async () => {
    const password = Buffer.from(PASSWORD);
    await expect(
      signInToGuest({ connection: conn, workspace: workspace(false), user: 'ana', password, bus }),
    ).rejects.toThrow(/spec\.guestSignIn: true/);
    expect(password.every((b) => b === 0)).toBe(true);
  });

  it(
    'a wrong password is refused by the guest (unix_chkpwd), as a typed error and an event',
    async () => {
      const err = await signInToGuest({
        connection: conn,
        workspace: workspace(true),
        user: 'ana',
        password: Buffer.from('not-the-password'),
        bus,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestOperationError);
      expect((err as GuestOperationError).message).toContain('refused the password of "ana"');
      expect(store.query({ type: ['guest.sign-in-failed'] }).map((e) => e.data)).toContainEqual(
        expect.objectContaining({ vm, user: 'ana' }),
      );
    },
    LONG,
  );

  it(
    "the credentials arrive, the guest signs the user in and starts the session as the user; the password's bytes are nowhere",
    async () => {
      expect(conn.has('sign-in')).toBe(true);
      const password = Buffer.from(PASSWORD);
      const result = await signInToGuest({ connection: conn, workspace: workspace(true), user: 'ana', password, bus });
      expect(result).toMatchObject({ user: 'ana', method: 'unix_chkpwd+su' });
      expect(password.every((b) => b === 0)).toBe(true);
      const pid = result.sessionPid!;
      expect(pid).toBeGreaterThan(1);

      // The session runs as ana, with her login environment (the image's /etc/tandem/session wrote it).
      expect(await guestShell(vm, `grep '^Uid:' /proc/${pid}/status`)).toMatch(/^Uid:\s+1000\s+1000/);
      const session = await guestShell(vm, 'cat /home/ana/.tandem-session');
      expect(session).toContain('uid=1000(ana)');
      expect(session).toContain('HOME=/home/ana USER=ana');
      expect(store.query({ type: ['guest.signed-in'] }).map((e) => e.data)).toContainEqual(
        expect.objectContaining({ vm, user: 'ana', method: 'unix_chkpwd+su', sessionPid: pid }),
      );

      // Nowhere: every process's argv and environment in the guest (read whole, searched here, so
      // the search itself puts nothing in an argv), the agent's files on the persistent disk ...
      const procs = await guestShell(vm, 'for p in /proc/[0-9]*; do cat $p/cmdline $p/environ 2>/dev/null; echo; done');
      expect(procs).toContain('sleep\u00002147483647'); // the session, read with the rest
      expect(procs).not.toContain(PASSWORD);
      const state = await guestShell(vm, 'find /mnt/state -type f -exec cat {} + 2>/dev/null; ls -R /mnt/state');
      expect(state).not.toContain(PASSWORD);
      // ... the agent's log (its stderr is the guest's serial console, kept in a file here),
      const log = await readFile(consoleLogPath(files.dir), 'utf8');
      expect(log).toContain('signed in ana (unix_chkpwd+su)');
      expect(log).not.toContain(PASSWORD);
      // ... and the host's event store, every byte of the SQLite files (WAL included).
      const bytes = Buffer.from(PASSWORD);
      for (const f of await readdir(host)) {
        expect((await readFile(join(host, f))).includes(bytes), f).toBe(false);
      }
      expect(JSON.stringify(store.query({}))).not.toContain(PASSWORD);
      // The host's own processes: this test's argv never held it either.
      const { stdout } = await run('ps', ['-eo', 'args']);
      expect(stdout).not.toContain(PASSWORD);
    },
    LONG,
  );
});
