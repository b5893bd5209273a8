import { InvalidInputError, type DiskSpec, type VmSpec } from '@tandem/core';
import { escapeXml } from './xml/tree.js';

/** The namespace of Tandem's metadata inside a libvirt domain definition. */
export const TANDEM_XMLNS = 'https://tandem.dev/xmlns/libvirt/1';

/** Target name of the virtio-serial port the Tandem guest agent opens. */
export const AGENT_CHANNEL = 'org.tandem.agent.0';

/** Target name of QEMU's guest agent port (address discovery through the agent). */
export const QEMU_GA_CHANNEL = 'org.qemu.guest_agent.0';

/** Host-side choices for turning a {@link VmSpec} into a domain definition. */
export interface DomainXmlOptions {
  /** `kvm` (hardware virtualization) or `qemu` (software emulation). */
  readonly virtType: 'kvm' | 'qemu';
  /** libvirt network used for `nat` (default `default`). */
  readonly natNetwork: string;
  /** libvirt network used for `host-only` (an isolated network). */
  readonly hostOnlyNetwork: string;
  /** Guest architecture (default x86_64). */
  readonly arch?: string;
  /** Machine type (default: libvirt's default for the architecture). */
  readonly machine?: string;
  /** After the disks, boot from the network (PXE) too. */
  readonly networkBoot?: boolean;
  /**
   * The MAC address to keep when the spec names none (a redefinition keeps the one libvirt
   * generated, so the guest does not see a new network card).
   */
  readonly keptMacAddress?: string;
}

const DISK_FORMATS: Record<DiskSpec['format'], string> = {
  qcow2: 'qcow2',
  raw: 'raw',
  vdi: 'vdi',
  vhdx: 'vhdx',
  vmdk: 'vmdk',
};

/**
 * Builds libvirt domain XML from a VM spec: memory, CPUs, disks (LUKS-encrypted ones refer
 * to their secret by the disk's path, so the definition never holds a key or a secret id),
 * network mode, graphics, the guest-agent channel, direct kernel boot (`<os><kernel/><initrd/>
 * <cmdline/>`) and Tandem's labels as metadata.
 */
export function buildDomainXml(spec: VmSpec, options: DomainXmlOptions): string {
  validateSpec(spec);
  try {
    return renderDomainXml(spec, options);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new InvalidInputError(
      `VM spec for "${spec.name}" holds a control character that libvirt's XML cannot carry.`,
      {
        cause: err,
        details: { vm: spec.name },
      },
    );
  }
}

function renderDomainXml(spec: VmSpec, options: DomainXmlOptions): string {
  const windows = spec.osFamily === 'windows';
  const e = escapeXml;
  const lines: string[] = [];
  lines.push(`<domain type='${options.virtType}'>`);
  lines.push(`  <name>${e(spec.name)}</name>`);
  lines.push(`  <description>Tandem VM ${e(spec.name)}</description>`);
  lines.push('  <metadata>');
  lines.push(
    `    <tandem:vm xmlns:tandem='${TANDEM_XMLNS}' osFamily='${e(spec.osFamily)}' guestChannel='${spec.guestChannel ? 'yes' : 'no'}' graphics='${e(spec.graphics.kind)}' network='${e(spec.network.mode)}'${spec.network.macAddress ? ` mac='${e(spec.network.macAddress)}'` : ''}>`,
  );
  for (const [key, value] of Object.entries(spec.labels ?? {})) {
    lines.push(`      <tandem:label key='${e(key)}' value='${e(value)}'/>`);
  }
  for (const disk of spec.disks) {
    if (disk.encryption) lines.push(`      <tandem:disk path='${e(disk.path)}' keyId='${e(disk.encryption.keyId)}'/>`);
  }
  lines.push('    </tandem:vm>');
  lines.push('  </metadata>');
  lines.push(`  <memory unit='MiB'>${spec.memoryMiB}</memory>`);
  lines.push(`  <vcpu>${spec.cpus}</vcpu>`);
  const machine = options.machine ? ` machine='${e(options.machine)}'` : '';
  // Direct kernel boot: QEMU loads the kernel and initramfs itself; the disks stay attached.
  const boot = spec.boot
    ? `<kernel>${e(spec.boot.kernel)}</kernel>` +
      (spec.boot.initrd ? `<initrd>${e(spec.boot.initrd)}</initrd>` : '') +
      (spec.boot.cmdline ? `<cmdline>${e(spec.boot.cmdline)}</cmdline>` : '')
    : options.networkBoot && spec.network.mode !== 'none'
      ? "<boot dev='hd'/><boot dev='network'/>"
      : "<boot dev='hd'/>";
  lines.push(`  <os><type arch='${e(options.arch ?? 'x86_64')}'${machine}>hvm</type>${boot}</os>`);
  lines.push('  <features><acpi/><apic/></features>');
  lines.push(`  <clock offset='${windows ? 'localtime' : 'utc'}'/>`);
  lines.push('  <on_poweroff>destroy</on_poweroff>');
  lines.push('  <on_reboot>restart</on_reboot>');
  lines.push('  <on_crash>destroy</on_crash>');
  lines.push('  <devices>');
  spec.disks.forEach((disk, i) => lines.push(...diskXml(disk, i, windows)));
  lines.push(...interfaceXml(spec, options, windows));
  if (spec.guestChannel) {
    lines.push(`    <channel type='unix'><target type='virtio' name='${AGENT_CHANNEL}'/></channel>`);
  }
  lines.push(`    <channel type='unix'><target type='virtio' name='${QEMU_GA_CHANNEL}'/></channel>`);
  lines.push(...graphicsXml(spec));
  lines.push("    <serial type='pty'><target port='0'/></serial>");
  lines.push("    <console type='pty'><target type='serial' port='0'/></console>");
  lines.push("    <memballoon model='virtio'/>");
  lines.push('  </devices>');
  lines.push('</domain>');
  return lines.join('\n') + '\n';
}

function diskXml(disk: DiskSpec, index: number, windows: boolean): string[] {
  const e = escapeXml;
  // Windows installs carry no virtio driver; SATA boots everywhere.
  const [bus, prefix] = windows ? ['sata', 'sd'] : ['virtio', 'vd'];
  const encryption = disk.encryption
    ? `<encryption format='luks'><secret type='passphrase' usage='${e(disk.path)}'/></encryption>`
    : '';
  return [
    "    <disk type='file' device='disk'>",
    `      <driver name='qemu' type='${DISK_FORMATS[disk.format]}'/>`,
    `      <source file='${e(disk.path)}'>${encryption}</source>`,
    `      <target dev='${prefix}${driveLetters(index)}' bus='${bus}'/>`,
    ...(disk.readOnly ? ['      <readonly/>'] : []),
    '    </disk>',
  ];
}

function interfaceXml(spec: VmSpec, options: DomainXmlOptions, windows: boolean): string[] {
  const e = escapeXml;
  const model = `<model type='${windows ? 'e1000e' : 'virtio'}'/>`;
  const address = spec.network.macAddress ?? options.keptMacAddress;
  const mac = address ? `<mac address='${e(address)}'/>` : '';
  switch (spec.network.mode) {
    case 'none':
      return [];
    case 'nat':
      return [`    <interface type='network'><source network='${e(options.natNetwork)}'/>${mac}${model}</interface>`];
    case 'host-only':
      return [
        `    <interface type='network'><source network='${e(options.hostOnlyNetwork)}'/>${mac}${model}</interface>`,
      ];
    case 'bridged':
      return [
        `    <interface type='bridge'><source bridge='${e(spec.network.bridge ?? '')}'/>${mac}${model}</interface>`,
      ];
  }
}

function graphicsXml(spec: VmSpec): string[] {
  switch (spec.graphics.kind) {
    case 'none':
      return ["    <video><model type='none'/></video>"];
    case 'spice':
      return [
        "    <graphics type='spice' autoport='yes' listen='127.0.0.1'/>",
        "    <video><model type='qxl'/></video>",
      ];
    case 'vnc':
    case 'rdp':
      // RDP is served by the guest itself; the hypervisor's console stays VNC on loopback.
      return ["    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>", "    <video><model type='vga'/></video>"];
  }
}

/** a, b, ..., z, aa, ab, ... as Linux names disks. */
function driveLetters(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

function validateSpec(spec: VmSpec): void {
  const bad = (path: string, expected: string, value: unknown): never => {
    throw new InvalidInputError(
      `VM spec for "${spec.name}": ${path} must be ${expected}, got ${JSON.stringify(value)}.`,
      {
        details: { vm: spec.name, path, expected, value },
      },
    );
  };
  if (typeof spec.name !== 'string' || spec.name.length === 0) bad('name', 'a non-empty string', spec.name);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB <= 0) bad('memoryMiB', 'a positive integer', spec.memoryMiB);
  if (!Number.isInteger(spec.cpus) || spec.cpus <= 0) bad('cpus', 'a positive integer', spec.cpus);
  spec.disks.forEach((d, i) => {
    if (!d.path.startsWith('/')) bad(`disks[${i}].path`, 'an absolute path on the libvirt host', d.path);
    if (!(d.format in DISK_FORMATS)) bad(`disks[${i}].format`, Object.keys(DISK_FORMATS).join(' | '), d.format);
    if (d.encryption && d.format !== 'qcow2') bad(`disks[${i}].format`, 'qcow2 for an encrypted disk (LUKS)', d.format);
  });
  if (spec.boot) {
    if (typeof spec.boot.kernel !== 'string' || !spec.boot.kernel.startsWith('/')) {
      bad('boot.kernel', 'an absolute path on the libvirt host', spec.boot.kernel);
    }
    if (spec.boot.initrd !== undefined && !spec.boot.initrd.startsWith('/')) {
      bad('boot.initrd', 'an absolute path on the libvirt host', spec.boot.initrd);
    }
  }
  if (spec.network.mode === 'bridged' && !spec.network.bridge) {
    bad('network.bridge', 'the host bridge to attach to (network mode bridged)', spec.network.bridge);
  }
  if (spec.network.macAddress !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(spec.network.macAddress)) {
    bad('network.macAddress', 'a MAC address like 52:54:00:12:34:56', spec.network.macAddress);
  }
}
