// Shared set-up for the integration tests against a real libvirtd with QEMU (not shipped).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VmSpec } from '@tandem/core';
import { integrationGate, type IntegrationGate } from '@tandem/core/testing';
import { loadBinding } from '../binding.js';

const run = promisify(execFile);

/** The URI the integration tests drive. */
export const QEMU_URI = 'qemu:///system';

/** How to get a machine ready for these tests. */
export const HOW_TO_ENABLE =
  'as root, install libvirt-daemon-system, libvirt-clients, libvirt-dev, qemu-system-x86 and qemu-utils, start /usr/sbin/virtlogd -d and /usr/sbin/libvirtd -d (see docs/adapters/libvirt.md or .ci/run), and make sure @unraid/libvirt built';

/** Skips (or fails under TANDEM_IT=required) unless libvirtd with QEMU, virsh, qemu-img and the binding are here. */
export function qemuGate(): Promise<IntegrationGate> {
  return integrationGate(
    'libvirt/QEMU',
    async () => {
      const binding = await loadBinding();
      if (!binding.ok) return `the @unraid/libvirt binding is not usable (${binding.reason})`;
      try {
        await run('qemu-img', ['--version']);
      } catch {
        return 'qemu-img is not installed';
      }
      try {
        await run('virsh', ['-c', QEMU_URI, 'version', '--daemon'], { env: { ...process.env, LC_ALL: 'C' } });
      } catch (err) {
        return `virsh cannot reach libvirtd at ${QEMU_URI} (${String((err as { stderr?: string }).stderr ?? err).trim()})`;
      }
      return null;
    },
    HOW_TO_ENABLE,
  );
}

/** A unique VM name with the integration-test prefix. */
export function itName(tag: string): string {
  return `tandem-it-${tag}-${randomBytes(3).toString('hex')}`;
}

/** A directory QEMU (user libvirt-qemu) can reach, for test images. */
export async function imageDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-it-'));
  await chmod(dir, 0o755);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** An empty qcow2 image: the VM boots into firmware and stays there. */
export async function emptyDisk(dir: string, name: string, sizeMiB = 64): Promise<string> {
  const path = join(dir, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, `${sizeMiB}M`]);
  return path;
}

/**
 * Tiny guests in a boot sector (real-mode x86 on the i440fx machine, PM base 0x600 as SeaBIOS
 * sets it up):
 * - `poweroff`: powers the machine off at once, as a guest OS shutting down would;
 * - `acpi`: enables the ACPI power button, waits for it, then powers off (honours a graceful stop).
 */
const BOOT_PROGRAMS: Record<'poweroff' | 'acpi', number[]> = {
  // mov dx,0x604; mov ax,0x2000; out dx,ax; hlt; jmp $-1
  poweroff: [0xba, 0x04, 0x06, 0xb8, 0x00, 0x20, 0xef, 0xf4, 0xeb, 0xfd],
  // mov dx,0x602; mov ax,0x100; out dx,ax (PWRBTN_EN)
  // loop: mov dx,0x600; in ax,dx; test ax,0x100; jz loop (PWRBTN_STS)
  // mov dx,0x604; mov ax,0x2000; out dx,ax; hlt; jmp $-1
  acpi: [
    0xba, 0x02, 0x06, 0xb8, 0x00, 0x01, 0xef, 0xba, 0x00, 0x06, 0xed, 0xa9, 0x00, 0x01, 0x74, 0xf7, 0xba, 0x04, 0x06,
    0xb8, 0x00, 0x20, 0xef, 0xf4, 0xeb, 0xfd,
  ],
};

/** A qcow2 image whose boot sector runs one of the tiny guests above. */
export async function bootSectorDisk(dir: string, name: string, program: 'poweroff' | 'acpi'): Promise<string> {
  const code = BOOT_PROGRAMS[program];
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  const raw = join(dir, `${name}.raw`);
  const path = join(dir, `${name}.qcow2`);
  await writeFile(raw, sector);
  await run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, path]);
  await run('qemu-img', ['resize', '-q', path, '64M']);
  await rm(raw);
  return path;
}

/** A small VM: 64 MiB, one CPU, no network, no graphics. */
export function smallSpec(name: string, disk: string, overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name,
    memoryMiB: 64,
    cpus: 1,
    disks: [{ path: disk, format: 'qcow2' }],
    network: { mode: 'none' },
    graphics: { kind: 'none' },
    osFamily: 'other',
    ...overrides,
  };
}

/** Runs virsh on the test URI (for looking behind the adapter's back). */
export async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-q', '-c', QEMU_URI, ...args], { env: { ...process.env, LC_ALL: 'C' } });
  return stdout;
}

/** Removes a VM by name whatever state it is in (best effort). */
export async function purge(name: string): Promise<void> {
  await virsh('destroy', '--domain', name).catch(() => undefined);
  await virsh('undefine', '--domain', name, '--managed-save', '--snapshots-metadata', '--nvram').catch(() => undefined);
}

/**
 * Polls until `check` holds (tests never assert how long that takes). The default limit is
 * generous: QEMU emulates the guest in software, and CI runs on a machine kept busy on purpose.
 */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the guest CPU runs the boot sector (loaded at 0x7c00). */
export async function untilBootSectorRuns(vm: string): Promise<void> {
  await until(`${vm} to run its boot sector`, async () =>
    /EIP=00007c[0-9a-f]{2}/.test(
      await virsh('qemu-monitor-command', '--domain', vm, '--hmp', 'info registers').catch(() => ''),
    ),
  );
}
