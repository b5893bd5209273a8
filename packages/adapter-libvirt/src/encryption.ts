import { randomUUID } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { execa } from 'execa';
import {
  ConflictError,
  HostError,
  HypervisorError,
  IntegrityError,
  InvalidInputError,
  TandemError,
  UnsupportedCapabilityError,
  type DiskEncryptionOps,
  type DiskSpec,
} from '@tandem/core';
import type { DomainDisk } from './domain-facts.js';
import { createLuksQcow2 } from './encrypted-luks-header.js';
import { withPipedSecret, withTempFile } from './handover.js';
import type { AdapterInternals } from './internals.js';
import { VirshFailure } from './virsh/runner.js';
import { escapeXml } from './xml/tree.js';

/**
 * The LUKS passphrase for a data key. Both qemu-img (creating the image) and libvirt (opening
 * it) receive this same text, so binary keys never meet a tool that trims newlines or stops at
 * a NUL byte.
 */
export function luksPassphrase(key: Uint8Array): string {
  if (key.length === 0) throw new InvalidInputError('An encryption key cannot be empty.', { details: {} });
  return Buffer.from(key).toString('base64');
}

/**
 * qcow2 images with LUKS encryption, created or converted by `qemu-img`. The key reaches
 * qemu-img as a secret object read from a named pipe, never on a command line or in a file.
 */
export class LibvirtDiskEncryption implements DiskEncryptionOps {
  constructor(readonly ctx: AdapterInternals) {}

  async encrypt(disk: DiskSpec, key: Uint8Array, options: { sizeBytes?: number } = {}): Promise<void> {
    if (this.ctx.uri.remote) {
      throw new UnsupportedCapabilityError(
        `Creating an encrypted image on a remote libvirt host (${this.ctx.uri.uri}) is not supported: run encrypt() on that host (or qemu-img there). Starting VMs with encrypted disks works remotely.`,
        { details: { uri: this.ctx.uri.uri, disk: disk.path } },
      );
    }
    if (disk.format !== 'qcow2') {
      throw new InvalidInputError(
        `Disk ${disk.path}: encryption needs format qcow2 (LUKS inside qcow2), got ${disk.format}.`,
        {
          details: { path: disk.path, format: disk.format, expected: 'qcow2' },
        },
      );
    }
    const passphrase = luksPassphrase(key);
    const qemuImg = this.ctx.options.qemuImg ?? 'qemu-img';
    const iter = this.ctx.options.luksIterTimeMs;
    const encryptOpts = `encrypt.format=luks,encrypt.key-secret=tandemkey${iter ? `,encrypt.iter-time=${iter}` : ''}`;
    const existing = await stat(disk.path).catch(() => undefined);
    if (!existing) {
      if (!options.sizeBytes || options.sizeBytes <= 0) {
        throw new InvalidInputError(`Disk ${disk.path} does not exist: give sizeBytes to create it encrypted.`, {
          details: { path: disk.path, expected: 'sizeBytes > 0' },
        });
      }
      const size = String(options.sizeBytes);
      await qemuImgWithKey(
        qemuImg,
        (fifo) => ['create', '-q', '-f', 'qcow2', '--object', secretObject(fifo), '-o', encryptOpts, disk.path, size],
        passphrase,
      );
      return;
    }
    const info = JSON.parse(await runQemuImg(qemuImg, ['info', '--output=json', disk.path])) as {
      encrypted?: boolean;
      format?: string;
    };
    if (info.encrypted) {
      throw new ConflictError(`Disk ${disk.path} is already encrypted; Tandem does not re-key images.`, {
        details: { path: disk.path },
      });
    }
    // Convert beside the original, then swap it in: the image is never half-encrypted.
    const tmp = `${disk.path}.tandem-encrypting-${randomUUID()}`;
    try {
      const from = info.format ?? 'qcow2';
      await qemuImgWithKey(
        qemuImg,
        (fifo) => [
          'convert',
          '-q',
          '-f',
          from,
          '-O',
          'qcow2',
          '--object',
          secretObject(fifo),
          '-o',
          encryptOpts,
          disk.path,
          tmp,
        ],
        passphrase,
      );
      await rename(tmp, disk.path);
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

/**
 * Creates an empty LUKS-encrypted qcow2 image of `size` bytes at `path`, the key handed to
 * qemu-img through a named pipe (used for encrypted images at rest, see
 * `libvirtEncryptedImages`).
 */
export async function createEncryptedQcow2(
  qemuImg: string,
  path: string,
  size: number,
  key: Uint8Array,
  iterTimeMs?: number,
): Promise<void> {
  const encryptOpts = `encrypt.format=luks,encrypt.key-secret=tandemkey${iterTimeMs ? `,encrypt.iter-time=${iterTimeMs}` : ''}`;
  await qemuImgWithKey(
    qemuImg,
    (fifo) => ['create', '-q', '-f', 'qcow2', '--object', secretObject(fifo), '-o', encryptOpts, path, String(size)],
    luksPassphrase(key),
  );
}

/**
 * Creates a LUKS-encrypted qcow2 overlay at `path` backed by the encrypted qcow2 `base` (of
 * `size` bytes), under the same key. qemu-img makes the overlay unencrypted and Tandem adds the
 * LUKS header (see `createLuksQcow2`; qemu-img's own LUKS, the key on a named pipe, when the
 * layout is one Tandem does not know). qemu-img does not open the base (`-u`): its size comes
 * from the caller, and the base is never written.
 */
export async function createEncryptedOverlay(
  qemuImg: string,
  path: string,
  base: string,
  size: number,
  key: Uint8Array,
  iterTimeMs?: number,
): Promise<void> {
  // Tandem's own LUKS header first: qemu-img's calibrates PBKDF2 for about 1 s of CPU (7.6 s of wall clock measured here).
  if (await createLuksQcow2(qemuImg, path, size, key, ['-u', '-b', base, '-F', 'qcow2'])) return;
  const encryptOpts = `encrypt.format=luks,encrypt.key-secret=tandemkey${iterTimeMs ? `,encrypt.iter-time=${iterTimeMs}` : ''}`;
  await qemuImgWithKey(
    qemuImg,
    (fifo) => [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-u',
      '-b',
      base,
      '-F',
      'qcow2',
      '--object',
      secretObject(fifo),
      '-o',
      encryptOpts,
      path,
      String(size),
    ],
    luksPassphrase(key),
  );
}

/** qemu's secret object reading the key from `path`. Commas in the path are doubled, as qemu's option syntax wants. */
function secretObject(path: string): string {
  return `secret,id=tandemkey,format=raw,file=${path.replaceAll(',', ',,')}`;
}

/** Runs qemu-img with the key on a fresh named pipe per attempt. */
async function qemuImgWithKey(binary: string, args: (keyFile: string) => string[], passphrase: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await withPipedSecret(passphrase, (fifo) => runQemuImg(binary, args(fifo)));
      return;
    } catch (err) {
      // qemu times its LUKS key derivation with the thread's CPU clock; on a coarse clock the
      // first measurement can read zero. That is a measuring glitch, not a failure: try again.
      const raw = TandemError.is(err) ? err.details['output'] : undefined;
      const output = typeof raw === 'string' ? raw : '';
      if (attempt >= 3 || !/Unable to get accurate CPU usage/.test(output)) throw err;
    }
  }
}

/** Runs qemu-img (no key involved) and returns its standard output; a failure is a typed error. */
export async function runQemuImg(binary: string, args: string[]): Promise<string> {
  const r = await execa(binary, args, { reject: false, env: { LC_ALL: 'C' }, stdin: 'ignore' });
  if (r.exitCode === undefined) {
    throw new HostError(`${binary} could not run (${r.shortMessage}). Install qemu-utils.`, {
      cause: r.cause,
      details: { binary },
    });
  }
  if (r.exitCode !== 0) {
    throw new HypervisorError(`${binary} ${args[0]} failed: ${r.stderr.trim()}`, {
      details: { binary, args, output: r.stderr, exitCode: r.exitCode },
    });
  }
  return r.stdout;
}

/**
 * Runs `boot` with a libvirt secret for every LUKS disk: private (its value cannot be read
 * back), ephemeral (never written to disk), found by the disk's path, and undefined again as
 * soon as QEMU has opened the disk, whether the boot worked or not.
 */
export async function withDiskSecrets<T>(
  ctx: AdapterInternals,
  vm: string,
  disks: readonly DomainDisk[],
  keys: ReadonlyMap<string, Uint8Array> | undefined,
  boot: () => Promise<T>,
): Promise<T> {
  const encrypted = disks.filter((d) => d.encryption?.usage !== undefined);
  const needed = encrypted.map((d) => {
    const keyId = d.encryption?.keyId;
    const key = keyId !== undefined ? keys?.get(keyId) : undefined;
    if (!key) {
      throw new InvalidInputError(
        `VM "${vm}" has an encrypted disk (${d.path}) and start() got no key for it: pass diskKeys with "${keyId ?? '(no key id recorded)'}".`,
        { details: { vm, disk: d.path, keyId: keyId ?? null, expected: 'diskKeys entry' } },
      );
    }
    return { usage: d.encryption?.usage ?? d.path, key };
  });
  if (!ctx.uri.remote) {
    for (const [i, d] of encrypted.entries()) await checkEncryptedDisk(ctx, vm, d, needed[i]!.key);
  }
  const defined: string[] = [];
  try {
    for (const { usage, key } of needed) defined.push(await defineSecret(ctx, vm, usage, key));
    return await boot();
  } finally {
    for (const uuid of defined) {
      await ctx.virsh.run(['secret-undefine', '--secret', uuid]).catch(() => undefined);
    }
  }
}

/**
 * Checks an encrypted qcow2's metadata with its key before a start (`qemu-img check`, which
 * reads no guest data): QEMU itself opens a truncated image and boots from whatever is left.
 * Corruption refuses the start with an IntegrityError; an image the key does not open is left
 * for QEMU to refuse (a wrong key, another image swapped in), with its own message.
 */
async function checkEncryptedDisk(ctx: AdapterInternals, vm: string, disk: DomainDisk, key: Uint8Array): Promise<void> {
  const qemuImg = ctx.options.qemuImg ?? 'qemu-img';
  const path = disk.path;
  // A session overlay's base is encrypted under the same key, and qemu-img opens it too.
  const backing = disk.overlayOf !== undefined ? ',backing.encrypt.key-secret=tandemkey' : '';
  const opts = `driver=qcow2,file.filename=${path.replaceAll(',', ',,')},encrypt.key-secret=tandemkey${backing}`;
  let output = '';
  let exitCode: number | undefined;
  await withPipedSecret(luksPassphrase(key), async (fifo) => {
    const r = await execa(qemuImg, ['check', '-q', '--object', secretObject(fifo), '--image-opts', opts], {
      reject: false,
      env: { LC_ALL: 'C' },
      stdin: 'ignore',
      all: true,
    });
    output = String(r.all ?? '');
    exitCode = r.exitCode;
  });
  // qemu-img check: 0 clean, 1 could not check, 2 corrupted, 3 only leaked clusters (harmless).
  if (exitCode === 2) {
    throw new IntegrityError(
      `VM "${vm}" was not started: its encrypted disk ${path} is damaged or truncated (qemu-img check found corruption). Pull the workspace again to restore it.`,
      { details: { vm, disk: path, output, exitCode } },
    );
  }
}

async function defineSecret(ctx: AdapterInternals, vm: string, usage: string, key: Uint8Array): Promise<string> {
  const uuid = randomUUID();
  const xml = `<secret ephemeral='yes' private='yes'><uuid>${uuid}</uuid><description>Tandem disk key for ${escapeXml(vm)}, removed after start</description><usage type='volume'><volume>${escapeXml(usage)}</volume></usage></secret>`;
  try {
    const define = (): Promise<string> => withTempFile(xml, (file) => ctx.virsh.run(['secret-define', '--file', file]));
    try {
      await define();
    } catch (err) {
      // A secret left behind by an interrupted start (ephemeral, so only until libvirtd restarts).
      if (!(err instanceof VirshFailure && /already defined for use with/.test(err.libvirtMessage))) throw err;
      const stale = /already defined for use with .*?([0-9a-f-]{36})|([0-9a-f-]{36}) already defined/.exec(
        err.libvirtMessage,
      );
      const staleUuid = stale?.[1] ?? stale?.[2];
      if (!staleUuid) throw err;
      await ctx.virsh.run(['secret-undefine', '--secret', staleUuid]);
      await define();
    }
    try {
      await withPipedSecret(luksPassphrase(key), (fifo) =>
        ctx.virsh.run(['secret-set-value', '--secret', uuid, '--file', fifo, '--plain']),
      );
    } catch (err) {
      await ctx.virsh.run(['secret-undefine', '--secret', uuid]).catch(() => undefined);
      throw err;
    }
    return uuid;
  } catch (err) {
    throw await ctx.toError(err, { operation: 'define disk secret', vm });
  }
}
