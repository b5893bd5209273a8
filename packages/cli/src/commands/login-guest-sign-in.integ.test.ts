// Single sign-on end to end on the real Linux test guest (scripts/test-guest) on qemu:///system:
// a real management server (built-in directory, HTTPS) started here, `tandem login` handing the
// password to a running `tandem agent run`, `tandem up` of a spec.guestSignIn workspace through
// the agent, and the guest agent signing the user in (unix_chkpwd against the guest's shadow
// file, a session with su -l). Then the password is looked for where it must never be: every
// process's argv and environment (host, sampled throughout, and guest), the agent's and the
// CLI's output, the guest's serial console, the events, and every file of the state directories.
import { execFile, spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDeployment, type Deployment } from '@tandem/server';
import {
  addControlPort,
  consoleLogPath,
  guestShell,
  prepareTestGuest,
  testGuestGate,
  type TestGuestFiles,
} from '../../../adapter-libvirt/src/testing/test-guest.test.helpers.js';
import { qemuGate } from '../../../adapter-libvirt/src/testing/fixtures.test.helpers.js';
import { filesUnder, sampleProcesses } from '../key-leak.test-helper.js';
import { purgeVm } from '../libvirt-cli.test-helper.js';
import { startAgentProcess, type AgentProcess } from './agent-process.test-helper.js';

const run = promisify(execFile);
const LONG = 900_000;
const BIN = fileURLToPath(new URL('../bin.ts', import.meta.url));
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));

const gate = await qemuGate();
const guestGate = gate.enabled ? await testGuestGate() : gate;

/** Random per run: finding it anywhere cannot be a coincidence. */
const PASSWORD = `Sso-${Math.random().toString(36).slice(2, 10)}-e2e`;

interface Run {
  code: number;
  json: any;
  stdout: string;
  stderr: string;
}

/** `tandem --state-dir STATE --json ARGS` from the sources, with `stdin` written to it. */
function tandem(stateDir: string, args: readonly string[], stdin = ''): Promise<Run> {
  const env = { ...process.env };
  delete env['TANDEM_PASSWORD'];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@tandem/source', BIN, '--state-dir', stateDir, '--json', ...args],
    { stdio: ['pipe', 'pipe', 'pipe'], env },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin);
  return new Promise((resolveRun) =>
    child.once('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolveRun({ code: code ?? -1, json, stdout, stderr });
    }),
  );
}

/** Waits (up to ten minutes) until `ok` resolves true. */
async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 600_000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** An initramfs layer with the guest account ana (her password hashed on the host, read on stdin). */
async function accountLayer(out: string): Promise<void> {
  const hashing = run('openssl', ['passwd', '-6', '-stdin']);
  hashing.child.stdin!.end(`${PASSWORD}\n`);
  const hash = (await hashing).stdout.trim();
  const { newcWriter } = (await import(pathToFileURL(join(ROOT, 'scripts/test-guest/newc.mjs')).href)) as {
    newcWriter: (path: string) => {
      file(name: string, data: string, perm?: number): Promise<void>;
      dir(name: string, perm?: number): Promise<void>;
      close(): Promise<unknown>;
    };
  };
  const cpio = newcWriter(out);
  await cpio.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nana:x:1000:1000:Ana:/home/ana:/bin/sh\n');
  await cpio.file('etc/group', 'root:x:0:\nana:x:1000:\n');
  await cpio.file('etc/shadow', `root:*:19000:0:99999:7:::\nana:${hash}:19000:0:99999:7:::\n`, 0o600);
  await cpio.dir('home/ana', 0o777);
  await cpio.close();
}

describe.skipIf(!guestGate.enabled)('tandem login → agent → tandem up signs the user in to the real guest', () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const name = `sso-${tag}`;
  const vm = `tandem-${name}`;
  let files: TestGuestFiles;
  let stateDir: string;
  let serverDir: string;
  let wsFile: string;
  let deployment: Deployment | undefined;
  let agent: AgentProcess | undefined;
  let url: string;

  beforeAll(async () => {
    files = await prepareTestGuest(`cli-sso-${tag}`);
    stateDir = join(files.dir, 'state');
    serverDir = join(files.dir, 'server');
    // The account rides in one more initramfs layer after the base and the agent's.
    const layer = join(files.dir, 'account.cpio.gz');
    await accountLayer(layer);
    await writeFile(files.initrd, Buffer.concat([await readFile(files.initrd), await readFile(layer)]));
    await chmod(files.initrd, 0o644);
    wsFile = join(files.dir, 'ws.yaml');
    await writeFile(
      wsFile,
      [
        'apiVersion: tandem/v1',
        'kind: Workspace',
        `metadata: { name: ${name}, version: 1.0.0 }`,
        'spec:',
        `  image: { source: ./${relative(files.dir, files.disk)}, format: qcow2 }`,
        `  boot: { kernel: ./${relative(files.dir, files.kernel)}, initrd: ./${relative(files.dir, files.initrd)}, cmdline: "console=ttyS0 panic=-1" }`,
        '  guestOs: linux',
        '  hardware: { memory: { fixedMiB: 512 } }',
        '  network: { mode: none }',
        '  guestSignIn: true',
        '',
      ].join('\n'),
    );
    // The management server with its built-in directory, over HTTPS with its own certificate.
    expect((await tandem(stateDir, ['server', 'init', '--dir', serverDir, '--listen', '127.0.0.1:0'])).code).toBe(0);
    const add = await tandem(
      stateDir,
      ['admin', 'user', 'add', 'ana', '--password-stdin', '--dir', serverDir],
      PASSWORD,
    );
    expect(add.code, add.stderr).toBe(0);
    deployment = await openDeployment(serverDir);
    url = (await deployment.serve({ host: '127.0.0.1', port: 0 }, { consoleDir: false })).url;
    agent = await startAgentProcess(stateDir);
  }, LONG);

  afterAll(async () => {
    if (agent) await agent.kill();
    await deployment?.close();
    await purgeVm(vm);
    await files?.remove();
  });

  it(
    'signs ana in to the guest once, and her password is in no argv, environment, log, event or file',
    async () => {
      const sampling = sampleProcesses();
      const login = await tandem(
        stateDir,
        ['login', url, '--user', 'ana', '--password-stdin', '--ca', join(serverDir, 'tls', 'server.crt')],
        PASSWORD,
      );
      expect(login.code, login.stderr).toBe(0);
      expect(login.json).toMatchObject({ signIn: { user: 'ana' }, agent: 'held' });

      // Defined first, so the test's control port and the serial console file can be added.
      const define = await tandem(stateDir, ['up', wsFile, '--adapter', 'libvirt', '--no-start']);
      expect(define.code, define.stderr).toBe(0);
      await addControlPort(vm, files.dir);
      const up = await tandem(stateDir, ['up', wsFile]);
      expect(up.code, up.stderr).toBe(0);
      expect(up.json).toMatchObject({ workspace: name, state: 'running' });

      // The agent signs ana in by itself once the guest agent says hello.
      let signedIn: { data: { user: string; method: string; sessionPid?: number } } | undefined;
      await until('guest.signed-in from the agent', async () => {
        const r = await tandem(stateDir, [
          'events',
          '-t',
          'guest.signed-in',
          'guest.sign-in-failed',
          'guest.sign-in-skipped',
        ]);
        const events = (r.json?.events ?? []) as {
          type: string;
          data: { user: string; method: string; sessionPid?: number };
        }[];
        const failed = events.find((e) => e.type !== 'guest.signed-in');
        if (failed) throw new Error(`no sign-in: ${failed.type} ${JSON.stringify(failed.data)}`);
        signedIn = events.find((e) => e.type === 'guest.signed-in');
        return signedIn !== undefined;
      });
      expect(signedIn!.data).toMatchObject({ user: 'ana', method: 'unix_chkpwd+su' });
      const pid = signedIn!.data.sessionPid!;
      // The guest has a session for ana: its first process runs as her.
      expect(await guestShell(vm, `grep '^Uid:' /proc/${pid}/status`)).toMatch(/^Uid:\s+1000\s+1000/);
      const held = await tandem(stateDir, ['events', '-t', 'credentials.held']);
      expect(held.json.events.map((e: { data: unknown }) => e.data)).toContainEqual({ user: 'ana', source: 'login' });

      // Nowhere: the guest's processes (read whole, searched here) and its persistent disk ...
      const procs = await guestShell(vm, 'for p in /proc/[0-9]*; do cat $p/cmdline $p/environ 2>/dev/null; echo; done');
      expect(procs).toContain('node');
      expect(procs).not.toContain(PASSWORD);
      expect(await guestShell(vm, 'find /mnt/state -type f -exec cat {} + 2>/dev/null; echo')).not.toContain(PASSWORD);
      // ... the guest agent's log (the serial console, kept in a file) ...
      const consoleLog = await readFile(consoleLogPath(files.dir), 'utf8');
      expect(consoleLog).toContain('signed in ana (unix_chkpwd+su)');
      expect(consoleLog).not.toContain(PASSWORD);
      // ... every host process's argv and environment seen while it all ran ...
      const { cmdlines, environs } = await sampling.stop();
      expect(cmdlines.size).toBeGreaterThan(0);
      for (const c of cmdlines) expect(c).not.toContain(PASSWORD);
      for (const e of environs) expect(e).not.toContain(PASSWORD);
      // ... the agent's and the commands' output, every event ...
      for (const out of [agent!.stderr(), login.stdout, login.stderr, up.stdout, up.stderr])
        expect(out).not.toContain(PASSWORD);
      const all = await tandem(stateDir, ['events']);
      expect(all.json.events.length).toBeGreaterThan(0);
      expect(all.stdout).not.toContain(PASSWORD);
      // ... and every byte of the endpoint's state directory and the server's (SQLite WAL included).
      const bytes = Buffer.from(PASSWORD);
      for (const f of [...(await filesUnder(stateDir)), ...(await filesUnder(serverDir))])
        expect((await readFile(f).catch(() => Buffer.alloc(0))).includes(bytes), f).toBe(false);

      // Once: the events say one sign-in, however often the agent re-read the session.
      await tandem(stateDir, ['status']);
      const again = await tandem(stateDir, ['events', '-t', 'guest.signed-in']);
      expect(again.json.events).toHaveLength(1);
    },
    LONG,
  );

  it(
    'without an agent, tandem up takes the password once on stdin, refuses a wrong one before the guest, and signs in in-process',
    async () => {
      // The agent stops (the VM keeps running): tandem up runs in-process.
      await agent?.kill();
      agent = undefined;
      const wrong = await tandem(stateDir, ['up', wsFile, '--password-stdin'], 'not-her-password');
      expect(wrong.code).not.toBe(0);
      expect(wrong.json.error).toMatchObject({ code: 'TANDEM_AUTH' });
      const before = await tandem(stateDir, ['events', '-t', 'guest.signed-in', 'guest.sign-in-failed']);
      const up = await tandem(stateDir, ['up', wsFile, '--password-stdin'], PASSWORD);
      expect(up.code, up.stderr).toBe(0);
      expect(up.json).toMatchObject({
        state: 'running',
        guestSignIn: { status: 'signed-in', result: { user: 'ana', method: 'unix_chkpwd+su' } },
      });
      const pid = up.json.guestSignIn.result.sessionPid as number;
      expect(await guestShell(vm, `grep '^Uid:' /proc/${pid}/status`)).toMatch(/^Uid:\s+1000\s+1000/);
      // One more sign-in event, none failed: the wrong password never reached the guest.
      const after = await tandem(stateDir, ['events', '-t', 'guest.signed-in', 'guest.sign-in-failed']);
      expect(after.json.events.length - before.json.events.length).toBe(1);
      expect(after.json.events.filter((e: { type: string }) => e.type === 'guest.sign-in-failed')).toEqual([]);
      for (const out of [up.stdout, up.stderr, wrong.stdout, wrong.stderr]) expect(out).not.toContain(PASSWORD);
    },
    LONG,
  );
});
