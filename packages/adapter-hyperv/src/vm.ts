import {
  InvalidInputError,
  UnsupportedCapabilityError,
  assertArgument,
  type KeyedQueue,
  type VmInfo,
  type VmSpec,
  type VmState,
} from '@tandem/core';
import { guid, mapHyperVState } from './parse.js';
import type { PowerShellCli } from './pwsh.js';
import { hyperVStatesFor } from './parse.js';

/** What the adapter's parts share. */
export interface HyperVContext {
  readonly ps: PowerShellCli;
  readonly serial: KeyedQueue;
  warn(message: string): void;
}

/** Checks a VM name before any process starts. */
export function checkVmName(vm: string): void {
  assertArgument(vm, 'VM name');
  if (vm.trim() === '')
    throw new InvalidInputError('The VM name is empty; give the name of a VM.', { details: { what: 'VM name' } });
}

/** The `allowed` value a script checks the VM's state against. */
export function allowed(states: readonly VmState[]): string {
  return hyperVStatesFor(states).join(',');
}

/** A VM as Get-VM | Select-Object Name, Id, State, MemoryStartup, ProcessorCount prints it. */
export function toVmInfo(o: Record<string, unknown>): VmInfo {
  const memory = typeof o['MemoryStartup'] === 'number' ? Math.floor(o['MemoryStartup'] / (1024 * 1024)) : undefined;
  const cpus = typeof o['ProcessorCount'] === 'number' ? o['ProcessorCount'] : undefined;
  const id = guid(o['Id']);
  return {
    name: String(o['Name']),
    ...(id ? { id } : {}),
    state: mapHyperVState(o['State']),
    ...(memory ? { memoryMiB: memory } : {}),
    ...(cpus ? { cpus } : {}),
  };
}

/** What the destroy script reports: the checkpoints removed, the .avhdx files merged, the disks kept. */
export interface RemovedVm {
  readonly id: string | null;
  /** Files deleted (with `deleteDisks`). */
  readonly files: readonly string[];
  /** Names of the checkpoints the VM had. */
  readonly checkpoints: readonly string[];
  /** The .avhdx files the VM ran on, merged into their parents before it was removed. */
  readonly merged: readonly string[];
  /** The disks the VM was attached to when it was removed. */
  readonly disks: readonly string[];
}

/** Reads the destroy script's `{ Removed, Files, Checkpoints, Merged, Disks }`. */
export function toRemovedVm(value: unknown): RemovedVm {
  const o = (value ?? {}) as Record<string, unknown>;
  const strings = (v: unknown): string[] =>
    (Array.isArray(v) ? v : v === null || v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
  return {
    id: guid(o['Removed']),
    files: strings(o['Files']),
    checkpoints: strings(o['Checkpoints']),
    merged: strings(o['Merged']),
    disks: strings(o['Disks']),
  };
}

/** True for an absolute Windows path (`C:\...` or `\\server\share\...`). */
export function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:\\/.test(p) || p.startsWith('\\\\');
}

/** `08:00:27:a1:b2:c3` as Hyper-V wants it (`080027A1B2C3`). */
export function macForHyperV(mac: string): string {
  const hex = mac.replace(/[:-]/g, '');
  if (!/^[0-9A-Fa-f]{12}$/.test(hex)) {
    throw new InvalidInputError(
      `MAC address "${mac}" is not valid: expected six hex pairs such as 00:15:5d:a1:b2:c3.`,
      {
        details: { what: 'network.macAddress', value: mac },
      },
    );
  }
  return hex.toUpperCase();
}

/** The values the define script takes, after checking the spec. */
export function defineValues(spec: VmSpec, defaultSwitch: string): Record<string, string | number | undefined> {
  checkVmName(spec.name);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 32) {
    throw new InvalidInputError(`The VM's memory must be a whole number of MiB, at least 32; got ${spec.memoryMiB}.`, {
      details: { what: 'memoryMiB' },
    });
  }
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1) {
    throw new InvalidInputError(`The VM's CPU count must be a positive whole number, got ${spec.cpus}.`, {
      details: { what: 'cpus' },
    });
  }
  const values: Record<string, string | number | undefined> = {
    name: spec.name,
    // Hyper-V takes startup memory in multiples of 2 MiB.
    memoryBytes: Math.ceil(spec.memoryMiB / 2) * 2 * 1024 * 1024,
    cpus: spec.cpus,
    notes: JSON.stringify({ tandem: true, labels: spec.labels ?? {} }),
    network: spec.network.mode,
  };
  spec.disks.forEach((d, i) => {
    assertArgument(d.path, `path of disk ${i + 1}`);
    if (!isWindowsPath(d.path)) {
      throw new InvalidInputError(
        `Disk path "${d.path}" is not an absolute Windows path; Hyper-V needs the full path on its host.`,
        {
          details: { what: `disks[${i}].path`, path: d.path },
        },
      );
    }
    if (d.format !== 'vhdx') {
      throw new InvalidInputError(
        `Hyper-V attaches VHDX images; ${d.path} is ${d.format}. Convert it (qemu-img convert -O vhdx, or Convert-VHD).`,
        {
          details: { what: `disks[${i}].format`, format: d.format },
        },
      );
    }
    if (d.encryption) {
      throw new UnsupportedCapabilityError(
        `Hyper-V has no host-side disk encryption with a key handed over at start, so disks[${i}] (${d.path}) cannot be an encrypted Tandem image. Use a plaintext image and encrypt inside the guest instead (BitLocker with a virtual TPM: Enable-VMTPM on the host, then BitLocker in the guest); see docs/encryption.md.`,
        {
          details: { what: `disks[${i}].encryption`, capability: 'diskEncryption', instead: 'BitLocker in the guest' },
        },
      );
    }
    values[`disk${i}`] = d.path;
  });
  const n = spec.network;
  if (n.mode === 'nat') values['switch'] = n.bridge ?? defaultSwitch;
  else if (n.mode === 'bridged' || n.mode === 'host-only') {
    if (!n.bridge) {
      throw new InvalidInputError(
        `${n.mode} networking on Hyper-V needs network.bridge: the name of the ${n.mode === 'bridged' ? 'external' : 'internal'} virtual switch.`,
        {
          details: { what: 'network.bridge' },
        },
      );
    }
    values['switch'] = n.bridge;
  }
  if (values['switch'] !== undefined) assertArgument(String(values['switch']), 'virtual switch name');
  if (n.macAddress) values['mac'] = macForHyperV(n.macAddress);
  if (spec.osFamily === 'linux') values['secureBootTemplate'] = 'MicrosoftUEFICertificateAuthority';
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    assertArgument(k, 'label name');
    assertArgument(v, `value of label ${k}`);
  }
  return values;
}
