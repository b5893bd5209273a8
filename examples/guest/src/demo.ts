import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { libvirt } from '@tandem/adapter-libvirt';
import { parseWorkspace } from '@tandem/core';
import { GuestConnection, runFirstTimeSetup, SetupRecordStore } from '@tandem/core/guest';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Options of {@link runGuestDemo}. */
export interface GuestDemoOptions {
  readonly log: (line: string) => void;
  /** The cached test guest (default $TANDEM_TEST_GUEST, else /var/cache/tandem-ci/test-guest/current). */
  readonly guestDir?: string;
  readonly uri?: string;
}

/** What the demo did: booted the guest, or what was missing. */
export type GuestDemoResult =
  | { readonly ran: true; readonly kernel: string; readonly computerName: string }
  | { readonly ran: false; readonly missing: string };

const WORKSPACE = `apiVersion: tandem/v1
kind: Workspace
metadata: { name: guest-demo, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  firstTimeSetup: { computerName: "demo-{random4}" }
`;

async function missing(guestDir: string, uri: string): Promise<string | null> {
  const probe = await libvirt({ uri, virtType: 'qemu' })
    .probe()
    .catch((err: unknown) => ({ usable: false as const, reason: String(err) }));
  if (!probe.usable) return `libvirt at ${uri} is not usable (${probe.reason})`;
  for (const f of ['vmlinuz', 'base.cpio.gz']) {
    if (!(await exists(join(guestDir, f)))) {
      return `the test guest is not built at ${guestDir} (as root: node scripts/test-guest/build.mjs base)`;
    }
  }
  if (!(await exists(join(ROOT, 'packages/guest-agent/dist/main.js'))))
    return 'the guest agent is not built (npx tsc -b)';
  return null;
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Boots the real Linux test guest (scripts/test-guest) with direct kernel boot through the libvirt
 * adapter, shows the guest agent's hello and the guest's info, runs first-time setup (a computer
 * name from the workspace's template) and removes the VM. Without libvirt or the test guest it
 * logs one line saying what is missing.
 *
 * @example
 * ```ts
 * const r = await runGuestDemo({ log: console.log });
 * if (r.ran) console.log(r.computerName);
 * ```
 */
export async function runGuestDemo(options: GuestDemoOptions): Promise<GuestDemoResult> {
  const { log } = options;
  const guestDir = resolve(
    options.guestDir ?? process.env['TANDEM_TEST_GUEST'] ?? '/var/cache/tandem-ci/test-guest/current',
  );
  const uri = options.uri ?? 'qemu:///system';
  const why = await missing(guestDir, uri);
  if (why) {
    log(`guest demo skipped: ${why}`);
    return { ran: false, missing: why };
  }

  // The VM's files must be readable by QEMU (libvirt-qemu): beside the cache, not a private /tmp.
  const runs = join(dirname(guestDir), 'runs');
  await mkdir(runs, { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(runs, 'demo-'));
  await chmod(dir, 0o755);
  const adapter = libvirt({ uri, virtType: 'qemu' });
  const vm = `tandem-guest-demo-${process.pid.toString(36)}`;
  const conn = new GuestConnection({ adapter, vm, helloTimeoutMs: 30_000, requestTimeoutMs: 60_000 });
  try {
    const initrd = join(dir, 'initrd.gz');
    await run(process.execPath, [
      join(ROOT, 'scripts/test-guest/build.mjs'),
      'initrd',
      '--guest',
      guestDir,
      '--out',
      initrd,
    ]);
    const disk = join(dir, 'state.qcow2');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    await adapter.define({
      name: vm,
      memoryMiB: 512,
      cpus: 1,
      disks: [{ path: disk, format: 'qcow2' }],
      network: { mode: 'none' },
      graphics: { kind: 'none' },
      osFamily: 'linux',
      guestChannel: true,
      boot: { kernel: join(guestDir, 'vmlinuz'), initrd, cmdline: 'console=ttyS0 panic=-1' },
    });
    log(`defined ${vm}: Debian's cloud kernel and an initramfs with busybox, Node.js and the guest agent`);
    const started = Date.now();
    await adapter.start(vm);
    log('started; waiting for the guest agent (software emulation: tens of seconds)');
    const agent = await conn.open({ timeoutMs: 300_000 });
    log(
      `hello from ${agent.software} ${agent.version} after ${((Date.now() - started) / 1000).toFixed(1)} s: protocol ${agent.protocol}, capabilities ${agent.capabilities.join(', ')}`,
    );
    const info = await conn.info();
    log(
      `info: ${info.os.name} ${info.os.version}, kernel ${info.os.kernel}, hostname ${info.hostname}, up ${info.uptimeSeconds} s`,
    );
    const workspace = parseWorkspace(WORKSPACE);
    const result = await runFirstTimeSetup({
      connection: conn,
      workspace,
      records: new SetupRecordStore(join(dir, 'setup')),
      bus: {
        publish: (type, data) => {
          if (type === 'guest.setup-step') {
            const d = data as { step: string; status: string; message?: string };
            log(`  setup ${d.step}: ${d.status}${d.message ? ` (${d.message})` : ''}`);
          }
        },
      },
    });
    const after = await conn.info();
    log(`first-time setup ${result.status}: the guest is now called ${after.hostname}`);
    return { ran: true, kernel: info.os.kernel, computerName: after.hostname };
  } finally {
    await conn.close();
    await adapter.destroy(vm).catch(() => undefined);
    await adapter.close?.();
    await rm(dir, { recursive: true, force: true });
  }
}
