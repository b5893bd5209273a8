// The conformance suite's hooks for libvirt with QEMU (not shipped): guests in a boot sector, a
// disk marker written and read with qemu-io, QEMU processes counted with pgrep and killed by the
// pid file libvirt keeps, and the power button pressed through QEMU's monitor.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VmSpec } from '@tandem/core';
import type { ConformanceHooks } from '@tandem/core/testing';
import { bootSectorDisk, emptyDisk, smallSpec, untilBootSectorRuns, virsh } from './fixtures.test.helpers.js';

const run = promisify(execFile);

/** Where the marker lives on a VM's disk: past the boot sector, inside the 64 MiB image. */
const MARKER_OFFSET = 1024 * 1024;
const MARKER_BYTES = 512;

/** The disks the subject made, by VM name, so the hooks can find them. */
export class ConformanceDisks {
  readonly #paths = new Map<string, string>();
  constructor(readonly dir: string) {}

  /** A VM with an empty disk: it boots into firmware, which ignores the ACPI power button. */
  async empty(name: string): Promise<VmSpec> {
    return this.#remember(name, await emptyDisk(this.dir, name));
  }

  /** A VM whose boot sector waits for the ACPI power button and then powers off. */
  async acpi(name: string): Promise<VmSpec> {
    return this.#remember(name, await bootSectorDisk(this.dir, name, 'acpi'));
  }

  path(vm: string): string {
    const path = this.#paths.get(vm);
    if (!path) throw new Error(`the conformance subject made no disk for ${vm}`);
    return path;
  }

  #remember(name: string, path: string): VmSpec {
    this.#paths.set(name, path);
    return smallSpec(name, path);
  }
}

/** Every hook the suite can use, for VMs whose disks `disks` made. */
export function libvirtConformanceHooks(disks: ConformanceDisks): ConformanceHooks {
  return {
    acpiGuest: { vmSpec: (name) => disks.acpi(name), ready: (vm) => untilBootSectorRuns(vm) },
    deafGuest: { vmSpec: (name) => disks.empty(name) },
    diskMarker: {
      write: (vm, marker) => writeMarker(disks.path(vm), marker),
      read: (vm) => readMarker(disks.path(vm)),
    },
    hypervisorProcesses: (vm) => qemuProcesses(vm),
    killHypervisor: async (vm) => {
      const pid = Number((await readFile(`/run/libvirt/qemu/${vm}.pid`, 'utf8')).trim());
      process.kill(pid, 'SIGKILL');
    },
    // The ACPI power button, pressed by QEMU's monitor rather than by the adapter: the boot-sector
    // guest sees it and powers the machine off, as a guest OS shutting down on its own would.
    guestPowerOff: async (vm) =>
      void (await virsh('qemu-monitor-command', '--domain', vm, '--hmp', 'system_powerdown')),
  };
}

/** Writes `marker` (NUL-padded) at the marker offset of a qcow2 image no QEMU has open. */
async function writeMarker(image: string, marker: string): Promise<void> {
  const bytes = Buffer.alloc(MARKER_BYTES);
  bytes.write(marker, 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'tandem-marker-'));
  try {
    const source = join(dir, 'marker');
    await writeFile(source, bytes);
    await run('qemu-io', ['-f', 'qcow2', '-c', `write -q -s ${source} ${MARKER_OFFSET} ${MARKER_BYTES}`, image]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads the marker back from qemu-io's hex dump (`00100000:  62 65 ...  before..`). */
async function readMarker(image: string): Promise<string> {
  const { stdout } = await run('qemu-io', [
    '-f',
    'qcow2',
    '-r',
    '-c',
    `read -v ${MARKER_OFFSET} ${MARKER_BYTES}`,
    image,
  ]);
  const bytes: number[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2}\s+){1,16})/.exec(line);
    if (!m?.[1]) continue;
    for (const hex of m[1].trim().split(/\s+/)) bytes.push(parseInt(hex, 16));
  }
  if (bytes.length !== MARKER_BYTES) throw new Error(`qemu-io read ${bytes.length} marker bytes:\n${stdout}`);
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.slice(0, end)).toString('utf8');
}

/** QEMU processes libvirt started for the domain (its command line has `-name guest=<vm>,`). */
async function qemuProcesses(vm: string): Promise<number> {
  try {
    const { stdout } = await run('pgrep', ['-f', `^\\S*qemu-system-\\S+ .*-name guest=${vm},`]);
    return stdout.split('\n').filter(Boolean).length;
  } catch (err) {
    // pgrep exits 1 when nothing matches.
    if ((err as { code?: number }).code === 1) return 0;
    throw err;
  }
}
