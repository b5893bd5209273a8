import {
  HypervisorError,
  InvalidInputError,
  assertArgument,
  type DiskSpec,
  type VmInfo,
  type VmSpec,
} from '@tandem/core';
import { readMachine, type VBoxContext } from './machine.js';
import { parseCreatedUuid } from './parse.js';

const OS_TYPES: Record<VmSpec['osFamily'], string> = { windows: 'Windows10_64', linux: 'Linux_64', other: 'Other_64' };
const DISK_FORMATS = new Set(['vdi', 'vmdk', 'vhdx', 'qcow2']);

/** True for an absolute path on a POSIX or Windows host. */
export function isAbsoluteHostPath(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/** Checks a disk before it reaches VBoxManage. */
export function checkDisk(disk: DiskSpec, what = 'disk path'): void {
  assertArgument(disk.path, what);
  if (!isAbsoluteHostPath(disk.path)) {
    throw new InvalidInputError(
      `The ${what} "${disk.path}" is not absolute; VirtualBox needs the full path on its host.`,
      {
        details: { what, path: disk.path },
      },
    );
  }
  if (!DISK_FORMATS.has(disk.format)) {
    throw new InvalidInputError(
      `VirtualBox cannot attach a ${disk.format} image as a hard disk. Convert it first (VBoxManage convertfromraw, or qemu-img convert -O vdi).`,
      { details: { what: 'disk format', format: disk.format, path: disk.path } },
    );
  }
}

/** Checks a VM spec before any process starts. */
export function checkSpec(spec: VmSpec): void {
  const positive = (n: number, what: string): void => {
    if (!Number.isInteger(n) || n < 1) {
      throw new InvalidInputError(`The VM's ${what} must be a positive whole number, got ${n}.`, {
        details: { what, value: n },
      });
    }
  };
  positive(spec.memoryMiB, 'memory (MiB)');
  positive(spec.cpus, 'CPU count');
  spec.disks.forEach((d, i) => checkDisk(d, `path of disk ${i + 1}`));
  if (spec.network.mode === 'bridged' && !spec.network.bridge) {
    throw new InvalidInputError(
      'Bridged networking needs network.bridge: the host interface to bridge to (for example eth0).',
      {
        details: { what: 'network.bridge' },
      },
    );
  }
  if (spec.network.bridge !== undefined) assertArgument(spec.network.bridge, 'network bridge');
  if (spec.network.macAddress !== undefined) macForVBox(spec.network.macAddress);
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    assertArgument(k, 'label name');
    assertArgument(v, `value of label ${k}`);
  }
}

/** `08:00:27:A1:B2:C3` or `080027a1b2c3` as VirtualBox wants it (`080027A1B2C3`). */
export function macForVBox(mac: string): string {
  const hex = mac.replace(/[:-]/g, '');
  if (!/^[0-9A-Fa-f]{12}$/.test(hex)) {
    throw new InvalidInputError(
      `MAC address "${mac}" is not valid: expected six hex pairs such as 08:00:27:a1:b2:c3.`,
      {
        details: { what: 'network.macAddress', value: mac },
      },
    );
  }
  return hex.toUpperCase();
}

function networkArgs(spec: VmSpec): string[] {
  const n = spec.network;
  switch (n.mode) {
    case 'nat':
      return ['--nic1=nat'];
    case 'bridged':
      return ['--nic1=bridged', `--bridgeadapter1=${n.bridge ?? ''}`];
    case 'host-only':
      return ['--nic1=hostonly', `--hostonlyadapter1=${n.bridge ?? 'vboxnet0'}`];
    case 'none':
      return ['--nic1=none'];
  }
}

/**
 * Creates and registers a VM (`createvm`), sets memory, CPUs and network (`modifyvm`), adds a
 * SATA controller and attaches the disks (`storagectl`, `storageattach`) and stores the labels
 * as extradata. When a step fails the half-made VM is removed again, its disks kept.
 */
export async function defineMachine(ctx: VBoxContext, spec: VmSpec): Promise<VmInfo> {
  checkSpec(spec);
  const { cli } = ctx;
  const created = await cli.run(
    ['createvm', `--name=${spec.name}`, `--ostype=${OS_TYPES[spec.osFamily]}`, '--register'],
    `Create VM "${spec.name}"`,
  );
  const uuid = parseCreatedUuid(created.stdout);
  if (!uuid) {
    throw new HypervisorError(`VBoxManage createvm printed no UUID for "${spec.name}"; see details.output.`, {
      details: { output: created.stdout + created.stderr },
    });
  }
  const attached: number[] = [];
  try {
    const modify = [
      'modifyvm',
      uuid,
      `--memory=${spec.memoryMiB}`,
      `--cpus=${spec.cpus}`,
      `--graphicscontroller=${spec.osFamily === 'windows' ? 'vboxsvga' : 'vmsvga'}`,
      '--ioapic=on',
      ...networkArgs(spec),
      ...(spec.network.macAddress ? [`--macaddress1=${macForVBox(spec.network.macAddress)}`] : []),
    ];
    await cli.run(modify, `Configure VM "${spec.name}"`);
    if (spec.disks.length) {
      await cli.run(
        ['storagectl', uuid, '--name=SATA', '--add=sata', '--controller=IntelAhci', `--portcount=${spec.disks.length}`],
        `Add a disk controller to "${spec.name}"`,
      );
      for (const [port, disk] of spec.disks.entries()) {
        await cli.run(
          [
            'storageattach',
            uuid,
            '--storagectl=SATA',
            `--port=${port}`,
            '--device=0',
            '--type=hdd',
            `--medium=${disk.path}`,
            ...(disk.readOnly ? ['--mtype=immutable'] : []),
          ],
          `Attach ${disk.path} to "${spec.name}"`,
        );
        attached.push(port);
      }
    }
    for (const [k, v] of Object.entries(spec.labels ?? {})) {
      await cli.run(['setextradata', uuid, `tandem/label/${k}`, v], `Label "${spec.name}"`);
    }
  } catch (err) {
    // Detach first: unregistervm --delete would delete attached images too.
    for (const port of attached) {
      await cli
        .exec(['storageattach', uuid, '--storagectl=SATA', `--port=${port}`, '--device=0', '--medium=none'])
        .catch(() => undefined);
    }
    await cli.exec(['unregistervm', uuid, '--delete']).catch(() => undefined);
    throw err;
  }
  ctx.uuids.set(spec.name, uuid);
  const m = await readMachine(ctx, spec.name, uuid);
  return { name: spec.name, id: uuid, state: m.state, memoryMiB: spec.memoryMiB, cpus: spec.cpus };
}
