// A libvirtd of a test's own, to stop and start without touching the shared one
// (@tandem/adapter-libvirt/testing: this adapter's tests and the CLI's agent tests use it).
//
// The shared daemon (qemu:///system) is used by every other test at the same time, so it is
// never stopped. A second system-mode daemon cannot run beside it: both would own
// /run/libvirt/qemu and /var/lib/libvirt/qemu (the QEMU driver locks its driver.pid there).
// libvirt's session mode keeps all of its state under $HOME and $XDG_RUNTIME_DIR, and it is what
// libvirtd runs in when it is not root. So the test runs /usr/sbin/libvirtd as `nobody`
// (`setpriv --reuid`), with HOME and XDG_RUNTIME_DIR in a temporary directory and its socket
// there; root connects to it with `qemu+unix:///session?socket=<dir>/sock/libvirt-sock`.
// Its QEMU runs as `nobody` too, so the images live in a directory `nobody` owns.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const LIBVIRTD = '/usr/sbin/libvirtd';

/** A private libvirtd in session mode, started and stopped by the test. */
export interface PrivateLibvirtd {
  /** The URI root connects to it with. */
  readonly uri: string;
  /** A directory for disk images its QEMU (user `nobody`) can read and write. */
  readonly images: string;
  /** The daemon's pid while it runs. */
  readonly pid: number | undefined;
  /** Starts the daemon and waits until it answers. */
  start(): Promise<void>;
  /** Kills the daemon with SIGKILL (its VMs keep running) and waits for it to exit. */
  kill(): Promise<void>;
  /** The pid of a running VM's QEMU. */
  qemuPid(vm: string): Promise<number>;
  /** Makes a file in {@link PrivateLibvirtd.images} belong to the daemon's user. */
  own(path: string): Promise<void>;
  /** Destroys its VMs, ends the daemon, its virtlogd and any QEMU left, and removes the directory. */
  remove(): Promise<void>;
}

/** Why a private libvirtd cannot run here, or null when it can. */
export async function privateLibvirtdProblem(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the test must run as root to start libvirtd as another user';
  try {
    await run('setpriv', ['--version']);
  } catch {
    return 'setpriv (util-linux) is not installed';
  }
  try {
    await run(LIBVIRTD, ['--version']);
  } catch {
    return `${LIBVIRTD} is not installed (libvirt-daemon)`;
  }
  try {
    await run('id', ['-u', 'nobody']);
  } catch {
    return 'there is no user "nobody"';
  }
  return null;
}

/**
 * Makes the directory and the daemon's configuration; {@link PrivateLibvirtd.start} starts it.
 * Check {@link privateLibvirtdProblem} first: it needs root, setpriv and the user `nobody`.
 *
 * @example
 * ```ts
 * const daemon = await privateLibvirtd();
 * await daemon.start();
 * const adapter = new LibvirtAdapter({ uri: daemon.uri, virtType: 'qemu' });
 * await daemon.kill(); // libvirtd is gone, its VMs run on
 * await daemon.start();
 * await daemon.remove();
 * ```
 */
export async function privateLibvirtd(): Promise<PrivateLibvirtd> {
  const uid = Number((await run('id', ['-u', 'nobody'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'nobody'])).stdout.trim());
  // Short names: QEMU's channel sockets live under XDG_CONFIG_HOME, and a UNIX socket path
  // must fit in 107 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'tlvd-'));
  await chmod(dir, 0o755);
  const home = join(dir, 'h');
  const configHome = join(dir, 'c');
  const runtime = join(dir, 'r');
  const sock = join(dir, 's');
  const images = join(dir, 'i');
  for (const d of [home, configHome, runtime, sock, images]) {
    await mkdir(d, { mode: 0o700 });
    await chown(d, uid, gid);
  }
  await chmod(images, 0o755);
  const config = join(dir, 'libvirtd.conf');
  // No TCP/TLS listeners exist in session mode; the socket goes where the test can find it.
  await writeFile(config, `unix_sock_dir = "${sock}"\n`);
  await chmod(config, 0o644);
  const uri = `qemu+unix:///session?socket=${join(sock, 'libvirt-sock')}`;
  const env = {
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: configHome,
    XDG_CACHE_HOME: join(home, '.cache'),
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C',
  };
  let child: ChildProcess | undefined;
  let stderr = '';
  const virsh = (...args: string[]) =>
    run('virsh', ['-q', '-c', uri, ...args], { env: { ...process.env, LC_ALL: 'C' } });

  const answers = async (): Promise<boolean> =>
    virsh('version', '--daemon').then(
      () => true,
      () => false,
    );

  const daemon: PrivateLibvirtd = {
    uri,
    images,
    get pid() {
      return child?.pid;
    },
    async start() {
      if (child) throw new Error('the private libvirtd already runs');
      stderr = '';
      const c = spawn(
        'setpriv',
        ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', LIBVIRTD, '-f', config],
        { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child = c;
      c.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<never>((_, reject) =>
        c.once('exit', (code, signal) =>
          reject(new Error(`the private libvirtd exited (${code ?? signal}) before it answered: ${stderr.trim()}`)),
        ),
      );
      exited.catch(() => undefined);
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (await Promise.race([answers(), exited])) return;
        if (Date.now() > deadline) throw new Error(`the private libvirtd did not answer: ${stderr.trim()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGKILL');
      await exited;
    },
    async qemuPid(vm) {
      return Number((await readFile(join(runtime, 'libvirt', 'qemu', 'run', `${vm}.pid`), 'utf8')).trim());
    },
    async own(path) {
      await chown(path, uid, gid);
    },
    async remove() {
      try {
        if (!child) await daemon.start().catch(() => undefined);
        if (child) {
          const names = (await virsh('list', '--all', '--name').catch(() => ({ stdout: '' }))).stdout
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '');
          for (const name of names) {
            await virsh('destroy', '--domain', name).catch(() => undefined);
            await virsh('undefine', '--domain', name, '--managed-save', '--snapshots-metadata').catch(() => undefined);
          }
        }
      } finally {
        const c = child;
        child = undefined;
        if (c && c.exitCode === null && c.signalCode === null) {
          const exited = new Promise<void>((r) => c.once('exit', () => r()));
          c.kill('SIGTERM');
          await exited;
        }
        // What the daemon leaves behind when it was killed: its virtlogd and any QEMU.
        const pidFiles = [join(runtime, 'libvirt', 'virtlogd.pid')];
        const qemuRun = join(runtime, 'libvirt', 'qemu', 'run');
        for (const f of await readdir(qemuRun).catch(() => [])) {
          if (f.endsWith('.pid') && f !== 'driver.pid') pidFiles.push(join(qemuRun, f));
        }
        for (const f of pidFiles) {
          const pid = Number((await readFile(f, 'utf8').catch(() => '')).trim());
          if (pid > 1) await killAndWait(pid);
        }
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  return daemon;
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
