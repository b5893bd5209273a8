import type { DiskFormat } from '../adapter/types.js';

/**
 * Keeps an encrypted workspace's image encrypted on the endpoint's disk, in the hypervisor's
 * own on-the-fly encryption (a LUKS-encrypted qcow2 for libvirt/QEMU), so that the VM reads it
 * with the key handed over in memory and plaintext never touches a disk. An adapter package
 * provides it (`libvirtEncryptedImages()`); `pullWorkspace` writes the pulled plaintext chunks
 * through it, straight from memory.
 */
export interface EncryptedImageStore {
  /** The format of the image files it makes, as a VM definition names it. */
  readonly format: DiskFormat;
  /** Makes an encrypted image of `size` bytes at `path`, all zeros (sparse), and opens it. */
  create(path: string, size: number, key: Uint8Array): Promise<EncryptedImage>;
  /** Opens an existing encrypted image (to read an installed version as a seed). */
  open(path: string, key: Uint8Array, options?: { readOnly?: boolean }): Promise<EncryptedImage>;
  /**
   * Called, when present, after a new image at `path` is complete and closed and before the
   * directory holding it is renamed so that it ends at `to`: a format that names its other files
   * by absolute path (a qcow2 with an external data file) points them at their final place.
   */
  relocate?(path: string, to: string, key: Uint8Array): Promise<void>;
}

/** An open encrypted image: reads and writes are of its plaintext, in memory. */
export interface EncryptedImage {
  /** Size of the plaintext (what the VM sees), in bytes. */
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Present when a new image does not read as zeros where nothing was written (Tandem writes its
   * ciphertext itself): the pull then marks every zero run of the plaintext through it, in image
   * order, before writing anything else. Without it, a new image is all zeros (sparse).
   */
  writeZeroes?(offset: number, length: number): Promise<void>;
  /**
   * Present when the store hashes the plaintext as it is written (the `data-file` layout, which
   * writes its ciphertext itself): the SHA-256 (hex) of the image's first `length` bytes, or
   * undefined when it cannot tell (an image opened again, a write over what was already hashed).
   * The pull's final check uses it instead of reading the whole image back; undefined, it reads
   * back.
   */
  digest?(length: number): Promise<string | undefined>;
  /** Flushes what was written to disk and closes. */
  close(): Promise<void>;
}
