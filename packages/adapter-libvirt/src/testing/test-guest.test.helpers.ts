// The real Linux test guest (scripts/test-guest) for the guest-agent tests on real QEMU (not shipped).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach } from 'vitest';
import type { VmSpec } from '@tandem/core';
import type { GuestConnection } from '@tandem/core/guest';
import { integrationGate, type IntegrationGate } from '@tandem/core/testing';
import type { LibvirtAdapter } from '../adapter.js';
import { emptyDisk, until, virsh } from './fixtures.test.helpers.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const BUILD = join(ROOT, 'scripts/test-guest/build.mjs');

/** Where the cached base of the test guest is: $TANDEM_TEST_GUEST (.ci/run exports it). */
export const TEST_GUEST_DIR = resolve(process.env['TANDEM_TEST_GUEST'] ?? '/var/cache/tandem-ci/test-guest/current');

/** What the base was built from (scripts/test-guest/build.mjs writes it). */
export interface TestGuestManifest {
  readonly kernelRelease: string;
  readonly kernelPackage: string;
  readonly kernelPackageVersion: string;
  readonly node: string;
  readonly baseBytes: number;
  readonly kernelBytes: number;
}

/** The virtio-serial port the test guest's /init runs a shell on (tests only). */
export const CONTROL_PORT = 'org.tandem.test.0';

/** The apps the image holds (scripts/test-guest/build.mjs TEST_APPS) and the one it hides. */
export const TEST_APPS = { shown: ['tandem-clock', 'tandem-notes'], hidden: 'tandem-hidden' } as const;

const HOW_TO_BUILD =
  'build it as root with `node scripts/test-guest/build.mjs base` (.ci/run does, and exports TANDEM_TEST_GUEST), then `npx tsc -b` so the agent layer has packages/guest-agent/dist';

/** Skips (or fails under TANDEM_IT=required) unless the test guest's base and the agent's dist are here. */
export function testGuestGate(): Promise<IntegrationGate> {
  return integrationGate(
    'real test guest',
    async () => {
      for (const f of ['vmlinuz', 'base.cpio.gz', 'manifest.json']) {
        const path = join(TEST_GUEST_DIR, f);
        try {
          const s = await stat(path);
          // QEMU runs as libvirt-qemu: the files must be readable by others.
          if ((s.mode & 0o004) === 0) return `${path} is not readable by the libvirt-qemu user`;
        } catch {
          return `the test guest is not built (${path} is missing)`;
        }
      }
      try {
        await access(join(ROOT, 'packages/guest-agent/dist/main.js'), constants.R_OK);
      } catch {
        return 'packages/guest-agent/dist/main.js is missing (the guest agent is not built)';
      }
      return null;
    },
    HOW_TO_BUILD,
  );
}

/** The manifest of the cached base. */
export async function testGuestManifest(): Promise<TestGuestManifest> {
  return JSON.parse(await readFile(join(TEST_GUEST_DIR, 'manifest.json'), 'utf8')) as TestGuestManifest;
}

/** Files of one booted test guest, in a directory QEMU (libvirt-qemu) can read. */
export interface TestGuestFiles {
  readonly dir: string;
  readonly kernel: string;
  /** The cached base followed by an agent layer built from the current tree. */
  readonly initrd: string;
  /** The persistent disk (/dev/vda, formatted by /init on first boot). */
  readonly disk: string;
  remove(): Promise<void>;
}

/**
 * Builds the initramfs for a test (the cached base plus the agent layer of this tree, so the
 * guest always runs the current agent) and an empty persistent disk. The directory sits beside
 * the cache, which QEMU can read, not in a private /tmp.
 */
export async function prepareTestGuest(tag: string): Promise<TestGuestFiles> {
  const runs = join(dirname(TEST_GUEST_DIR), 'runs');
  await mkdir(runs, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(runs, `${tag}-`));
  await chmod(dir, 0o755);
  const initrd = join(dir, 'initrd.gz');
  let disk: string;
  try {
    await run(process.execPath, [BUILD, 'initrd', '--guest', TEST_GUEST_DIR, '--out', initrd], { cwd: ROOT });
    disk = await emptyDisk(dir, 'state', 64);
    await chmod(disk, 0o644);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    kernel: join(TEST_GUEST_DIR, 'vmlinuz'),
    initrd,
    disk,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The VM spec of a test guest: direct kernel boot, the persistent disk, the agent channel. */
export function testGuestSpec(name: string, files: TestGuestFiles, overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name,
    memoryMiB: 512,
    cpus: 1,
    disks: [{ path: files.disk, format: 'qcow2' }],
    network: { mode: 'none' },
    graphics: { kind: 'none' },
    osFamily: 'linux',
    guestChannel: true,
    boot: { kernel: files.kernel, initrd: files.initrd, cmdline: 'console=ttyS0 panic=-1' },
    ...overrides,
  };
}

/**
 * Adds the test-only control port to a defined (stopped) VM, behind the adapter's back: a
 * workspace's VM never has it. The guest's /init runs a shell on it.
 */
export async function addControlPort(vm: string, dir: string): Promise<void> {
  const xml = join(dir, `${vm}-control.xml`);
  await writeFile(xml, `<channel type='unix'><target type='virtio' name='${CONTROL_PORT}'/></channel>\n`);
  await virsh('attach-device', '--domain', vm, '--file', xml, '--config');
  // The serial console into a file, so a failing test can show what the guest printed.
  const domain = await virsh('dumpxml', '--domain', vm, '--inactive');
  const log = consoleLogPath(dir);
  const withLog = domain
    .replace(
      /<serial type='pty'>[\s\S]*?<\/serial>/,
      `<serial type='file'><source path='${log}'/><target port='0'/></serial>`,
    )
    .replace(
      /<console type='pty'>[\s\S]*?<\/console>/,
      `<console type='file'><source path='${log}'/><target type='serial' port='0'/></console>`,
    );
  const file = join(dir, `${vm}.xml`);
  await writeFile(file, withLog);
  await virsh('define', '--file', file);
}

/** Where {@link addControlPort} sends the guest's serial console. */
export function consoleLogPath(dir: string): string {
  return join(dir, 'console.log');
}

/** The last lines the guest printed on its serial console (for a failing test's output). */
export async function consoleTail(dir: string, lines = 60): Promise<string> {
  const text = await readFile(consoleLogPath(dir), 'utf8').catch(() => '(no console log)');
  return text.split('\n').slice(-lines).join('\n');
}

async function printConsoleTail(dir: string): Promise<void> {
  process.stderr.write(`guest serial console (last lines):\n${await consoleTail(dir)}\n`);
}

/**
 * Starts `vm` and waits for its agent's hello on `conn`; when the hello does not come, the
 * guest's serial console goes to stderr before the error is thrown.
 */
export async function startUntilHello(
  adapter: Pick<LibvirtAdapter, 'start'>,
  vm: string,
  conn: Pick<GuestConnection, 'open'>,
  dir: string,
  timeoutMs = 240_000,
): Promise<void> {
  await adapter.start(vm);
  try {
    await conn.open({ timeoutMs });
  } catch (err) {
    await printConsoleTail(dir);
    throw err;
  }
}

/** Prints the guest's serial console after each failed test (call inside the `describe`). */
export function consoleTailOnFailure(files: () => TestGuestFiles | undefined): void {
  afterEach(async (ctx) => {
    const f = files();
    if (ctx.task.result?.state === 'fail' && f) await printConsoleTail(f.dir);
  });
}

/** The host socket of the running VM's control port (libvirt picks it at start). */
async function controlSocket(vm: string): Promise<string> {
  const xml = await virsh('dumpxml', '--domain', vm);
  const re = new RegExp(`<source mode='bind' path='([^']+/${CONTROL_PORT.replace(/\./g, '\\.')})'`);
  const path = re.exec(xml)?.[1];
  if (!path) throw new Error(`VM ${vm} has no ${CONTROL_PORT} socket (is it running, with addControlPort?)`);
  return path;
}

/** Runs one shell script in the guest over the control port; resolves with its output and status. */
async function shellOnce(vm: string, script: string, timeoutMs: number): Promise<{ out: string; status: number }> {
  const path = await controlSocket(vm);
  const marker = `__tandem_done_${randomBytes(4).toString('hex')}__`;
  return new Promise((resolvePromise, reject) => {
    const socket = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the guest shell did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`{ ${script}\n} 2>&1; echo "${marker} $?"\n`));
    socket.on('data', (d: string) => {
      buf += d;
      const m = new RegExp(`${marker} (\\d+)`).exec(buf);
      if (m) {
        clearTimeout(timer);
        socket.end();
        // The port carries no echo: everything before the marker is the script's output.
        resolvePromise({ out: buf.slice(0, m.index), status: Number(m[1]) });
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('the guest shell went away before answering'));
    });
  });
}

/**
 * Runs a shell script in the guest (busybox sh, as root) and returns its output. Retries until
 * the guest's shell answers: it is there a few seconds after the kernel starts, and again after a
 * reboot. Rejects when the script exits non-zero.
 */
export async function guestShell(vm: string, script: string, timeoutMs = 240_000): Promise<string> {
  let result: { out: string; status: number } | undefined;
  let last: unknown;
  await until(
    `the guest shell of ${vm} to run ${JSON.stringify(script)}`,
    async () => {
      try {
        result = await shellOnce(vm, script, 60_000);
        return true;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 500));
        return false;
      }
    },
    timeoutMs,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message} (last: ${String(last)})`);
  });
  if (!result) throw new Error('unreachable');
  if (result.status !== 0) throw new Error(`guest script exited ${result.status}: ${script}\n${result.out}`);
  return result.out;
}
