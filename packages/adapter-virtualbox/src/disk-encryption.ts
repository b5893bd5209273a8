import { InvalidInputError, assertArgument, type DiskEncryptionOps, type DiskSpec } from '@tandem/core';
import { checkDisk } from './define.js';
import { readMachine, type Machine, type VBoxContext } from './machine.js';

/**
 * The password VirtualBox gets for a disk key: the key's bytes as lowercase hex. It travels on
 * VBoxManage's stdin (`-` as the password file), never on a command line.
 */
export function passwordFor(key: Uint8Array): string {
  if (key.length === 0)
    throw new InvalidInputError('The disk key is empty; give the key bytes.', { details: { what: 'disk key' } });
  return Buffer.from(key).toString('hex');
}

/** Hands the VM the keys of its encrypted disks (`controlvm addencpassword <id> -`). */
export async function addDiskPasswords(
  ctx: VBoxContext,
  m: Machine,
  keys: ReadonlyMap<string, Uint8Array>,
): Promise<void> {
  for (const [id, key] of keys) {
    assertArgument(id, 'disk key id');
    await ctx.cli.run(['controlvm', m.uuid, 'addencpassword', id, '-'], `Give "${m.name}" the key "${id}"`, {
      input: `${passwordFor(key)}\n`,
    });
  }
  // VirtualBox pauses a VM that reached an encrypted disk before its key arrived.
  const after = await readMachine(ctx, m.name, m.uuid);
  if (after.state === 'paused')
    await ctx.cli.run(['controlvm', m.uuid, 'resume'], `Resume "${m.name}" after adding its disk keys`);
}

/**
 * VirtualBox's disk encryption (`encryptmedium`, AES-XTS256-PLAIN64; needs the Oracle VirtualBox
 * Extension Pack). Creates the image first when `sizeBytes` is given.
 */
export class VBoxDiskEncryption implements DiskEncryptionOps {
  constructor(readonly ctx: VBoxContext) {}

  async encrypt(disk: DiskSpec, key: Uint8Array, options: { sizeBytes?: number } = {}): Promise<void> {
    checkDisk(disk);
    if (disk.format !== 'vdi') {
      throw new InvalidInputError(
        `VirtualBox encrypts VDI images only; ${disk.path} is ${disk.format}. Convert it with VBoxManage clonemedium --format VDI.`,
        {
          details: { what: 'disk format', format: disk.format },
        },
      );
    }
    const keyId = disk.encryption?.keyId;
    if (!keyId) {
      throw new InvalidInputError(`Disk ${disk.path} has no encryption.keyId; give the id the key is known by.`, {
        details: { what: 'encryption.keyId' },
      });
    }
    assertArgument(keyId, 'disk key id');
    const password = passwordFor(key);
    if (options.sizeBytes !== undefined && (!Number.isFinite(options.sizeBytes) || options.sizeBytes <= 0)) {
      throw new InvalidInputError(`Disk size must be a positive number of bytes, got ${options.sizeBytes}.`, {
        details: { what: 'sizeBytes' },
      });
    }
    return this.ctx.serial.run(`disk:${disk.path}`, async () => {
      const { cli } = this.ctx;
      if (options.sizeBytes !== undefined) {
        const mib = Math.ceil(options.sizeBytes / (1024 * 1024));
        await cli.run(
          ['createmedium', 'disk', `--filename=${disk.path}`, `--size=${mib}`, '--format=VDI'],
          `Create disk ${disk.path}`,
        );
      }
      await cli.run(
        ['encryptmedium', disk.path, '--newpassword=-', `--newpasswordid=${keyId}`, '--cipher=AES-XTS256-PLAIN64'],
        `Encrypt disk ${disk.path}`,
        { input: `${password}\n` },
      );
    });
  }
}
