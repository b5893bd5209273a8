import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import {
  HostError,
  HypervisorError,
  InvalidInputError,
  type EncryptedImage,
  type EncryptedImageStore,
} from '@tandem/core';
import {
  createDataFileImage,
  dataFileOf,
  DataFileImage,
  relocateDataFileImage,
  type DataFileTools,
} from './encrypted-data-file.js';
import { createLuksQcow2 } from './encrypted-luks-header.js';
import { createEncryptedQcow2, luksPassphrase } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { NbdClient } from './nbd.js';

/** Options for {@link libvirtEncryptedImages}. */
export interface EncryptedImagesOptions {
  /** qemu-img binary; default `qemu-img`. */
  qemuImg?: string;
  /** qemu-nbd binary; default `qemu-nbd`. */
  qemuNbd?: string;
  /**
   * Who writes a new image's LUKS header:
   * - `tandem` (default): qemu-img makes the qcow2 without encryption and Tandem adds a LUKS1
   *   header it writes itself (aes-xts-plain64, sha256, 1000 PBKDF2
   *   iterations). The passphrase is a 256-bit disk key, so a calibrated slow key derivation
   *   buys nothing; qemu-img 7.2's calibration costs about 1 s of CPU per image whatever
   *   `luksIterTimeMs` says (9 s of wall clock on a loaded 2-core machine). qemu-img never sees
   *   the key then. A qcow2 layout Tandem does not know falls back to `qemu-img`.
   * - `qemu-img`: `qemu-img create -o encrypt.format=luks`, with `luksIterTimeMs`.
   */
  luksHeader?: 'tandem' | 'qemu-img';
  /** LUKS key-derivation time in ms when qemu-img writes the header (see `luksHeader`); default qemu-img's (2000). */
  luksIterTimeMs?: number;
  /** How long qemu-nbd may take to open an image (the LUKS key derivation); default 60 s. */
  openTimeoutMs?: number;
  /** qemu-io binary (the `data-file` layout marks zero runs with it); default `qemu-io`. */
  qemuIo?: string;
  /**
   * How the image is laid out and written (see docs/encryption.md, "At rest on libvirt"):
   * - `data-file`: a LUKS qcow2 whose clusters live in a raw external data file beside it
   *   (`IMAGE.data`); Tandem recovers the LUKS master key from the header QEMU wrote and writes
   *   the AES-XTS ciphertext into the data file itself, at OpenSSL speed. QEMU (and the VM) read
   *   it as any LUKS qcow2. Installed versions are read as seeds through qemu-nbd.
   * - `nbd` (default): a plain LUKS qcow2, every byte written through QEMU's LUKS layer (qemu-nbd).
   */
  layout?: 'nbd' | 'data-file';
  /**
   * `data-file` layout: the owner to give the data file once the image is complete. libvirt 9.0
   * does not know a qcow2's data file (no `<dataStore>` before libvirt 10.10): QEMU opens it
   * from the qcow2 header itself, as the QEMU process's user, and libvirt's DAC labelling changes
   * only the qcow2's owner. On `qemu:///system` give the QEMU user here (Debian:
   * `libvirt-qemu`); on `qemu:///session` QEMU runs as the endpoint's user and none is needed.
   */
  dataFileOwner?: { uid: number; gid: number };
}

/**
 * Encrypted images at rest for libvirt/QEMU: qcow2 with LUKS encryption, the format the
 * adapter starts VMs from with a private, ephemeral libvirt secret. Tandem reads and writes the
 * plaintext through a qemu-nbd of its own on a unix socket in a private directory, with the key
 * handed to qemu-img and qemu-nbd through a named pipe: plaintext and key never touch a disk,
 * argv or the environment. Unwritten ranges stay unallocated, so a mostly empty disk stays small.
 *
 * @example
 * ```ts
 * await pullWorkspace({ repo, workspace: 'legacy-erp', dir, key, encryptedImages: libvirtEncryptedImages() });
 * ```
 */
export function libvirtEncryptedImages(options: EncryptedImagesOptions = {}): EncryptedImageStore {
  if (options.luksHeader !== undefined && options.luksHeader !== 'tandem' && options.luksHeader !== 'qemu-img')
    throw new InvalidInputError(`luksHeader must be 'tandem' or 'qemu-img', not ${String(options.luksHeader)}.`, {
      details: { option: 'luksHeader', value: String(options.luksHeader), expected: "'tandem' | 'qemu-img'" },
    });
  if (options.layout === 'data-file') return dataFileImages(options);
  return {
    format: 'qcow2',
    async create(path, size, key) {
      if (!Number.isSafeInteger(size) || size <= 0)
        throw new InvalidInputError(`An encrypted image needs a size above 0, not ${size}.`);
      const qemuImg = options.qemuImg ?? 'qemu-img';
      if (options.luksHeader === 'qemu-img' || !(await createLuksQcow2(qemuImg, path, size, key)))
        await createEncryptedQcow2(qemuImg, path, size, key, options.luksIterTimeMs);
      return openImage(path, key, false, options);
    },
    open(path, key, opts) {
      return openImage(path, key, opts?.readOnly ?? false, options);
    },
  };
}

/** The `data-file` layout of {@link libvirtEncryptedImages}. */
function dataFileImages(options: EncryptedImagesOptions): EncryptedImageStore {
  const tools: DataFileTools = {
    qemuImg: options.qemuImg ?? 'qemu-img',
    qemuIo: options.qemuIo ?? 'qemu-io',
    ...(options.luksIterTimeMs ? { luksIterTimeMs: options.luksIterTimeMs } : {}),
    ...(options.luksHeader ? { luksHeader: options.luksHeader } : {}),
  };
  return {
    format: 'qcow2',
    async create(path, size, key) {
      if (!Number.isSafeInteger(size) || size <= 0)
        throw new InvalidInputError(`An encrypted image needs a size above 0, not ${size}.`);
      await createDataFileImage(tools, path, size, key);
      return DataFileImage.open(tools, path, key, true);
    },
    open(path, key, opts) {
      // Read-only (an installed version as a seed): through QEMU, which knows the zero clusters.
      if (opts?.readOnly) return openImage(path, key, true, options);
      return DataFileImage.open(tools, path, key, false);
    },
    async relocate(path, to, key) {
      await relocateDataFileImage(tools, path, to, key);
      const owner = options.dataFileOwner;
      if (owner) await chown(dataFileOf(path), owner.uid, owner.gid);
    },
  };
}

async function openImage(
  path: string,
  key: Uint8Array,
  readOnly: boolean,
  options: EncryptedImagesOptions,
): Promise<EncryptedImage> {
  await stat(path).catch((err: unknown) => {
    throw new InvalidInputError(`Encrypted image ${path} does not exist.`, { cause: err, details: { path } });
  });
  const dir = await mkdtemp(join(tmpdir(), 'tandem-nbd-'));
  const socket = join(dir, 'nbd.sock');
  let child: ResultPromise | undefined;
  try {
    const client = await withPipedSecret(luksPassphrase(key), async (fifo) => {
      const imageOpts = [
        'driver=qcow2',
        'file.driver=file',
        `file.filename=${path.replaceAll(',', ',,')}`,
        'encrypt.key-secret=tandemkey',
      ].join(',');
      child = execa(
        options.qemuNbd ?? 'qemu-nbd',
        [
          '--object',
          `secret,id=tandemkey,format=raw,file=${fifo.replaceAll(',', ',,')}`,
          '--image-opts',
          imageOpts,
          `--socket=${socket}`,
          '--cache=writeback',
          '--shared=1',
          ...(readOnly ? ['--read-only'] : []),
        ],
        { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' }, all: true },
      );
      return waitForServer(child, socket, path, options.openTimeoutMs ?? 60_000);
    });
    const running = child!;
    const image: EncryptedImage = {
      size: client.size,
      read: (offset, length) => client.read(offset, length),
      write: (offset, data) => {
        if (readOnly) throw new InvalidInputError(`${path} was opened read-only.`);
        return client.write(offset, data);
      },
      async close() {
        try {
          if (!readOnly) await client.flush();
        } finally {
          await client.close();
          await running;
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
    return image;
  } catch (err) {
    const c = child;
    c?.kill();
    await c?.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Waits until qemu-nbd listens (it reads the key and opens the image first), or says why it stopped. */
async function waitForServer(
  child: ResultPromise,
  socket: string,
  path: string,
  timeoutMs: number,
): Promise<NbdClient> {
  let exited = false;
  void child.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(200, delay * 2)) {
    if (exited) {
      const r = await child;
      const output = String(r.all ?? '').trim();
      throw new HypervisorError(
        `qemu-nbd could not open the encrypted image ${path}: ${output || `exit code ${String(r.exitCode)}`}. A wrong key, a damaged, truncated or swapped image all end here.`,
        { details: { path, output, exitCode: r.exitCode } },
      );
    }
    if (
      await stat(socket).then(
        () => true,
        () => false,
      )
    ) {
      try {
        return await NbdClient.connect(socket);
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new HostError(`qemu-nbd did not open ${path} within ${timeoutMs} ms.`, { details: { path } });
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
