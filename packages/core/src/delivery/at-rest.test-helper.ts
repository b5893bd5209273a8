// A test stand-in for a hypervisor's at-rest encryption (not shipped): the image file holds
// AES-256-CTR ciphertext of the plaintext at the same offset, so any byte can be read or
// written alone, and the file never holds plaintext.
import { createCipheriv } from 'node:crypto';
import { open, stat, truncate, writeFile } from 'node:fs/promises';
import type { EncryptedImage, EncryptedImageStore } from './at-rest.js';

function crypt(key: Uint8Array, offset: number, data: Uint8Array): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  const c = createCipheriv('aes-256-ctr', key, iv);
  const skip = offset % 16;
  if (skip) c.update(Buffer.alloc(skip));
  return c.update(data);
}

/** Opened images, for tests that check they were all closed. */
export const openImages = new Set<string>();

export const testEncryptedImages: EncryptedImageStore = {
  format: 'qcow2',
  async create(path, size, key) {
    // Zeros encrypt to keystream, so "all zeros" is written out (a real qcow2 stays sparse).
    // Sizes round up to whole sectors, as qemu-img's do.
    await writeFile(path, crypt(key, 0, Buffer.alloc(Math.ceil(size / 512) * 512)), { mode: 0o600 });
    return this.open(path, key);
  },
  async open(path, key, options) {
    const size = (await stat(path)).size;
    const handle = await open(path, options?.readOnly ? 'r' : 'r+');
    const k = Buffer.from(key);
    openImages.add(path);
    const image: EncryptedImage = {
      size,
      async read(offset, length) {
        const buf = Buffer.alloc(length);
        await handle.read(buf, 0, length, offset);
        return crypt(k, offset, buf);
      },
      async write(offset, data) {
        await handle.write(crypt(k, offset, data), 0, data.length, offset);
      },
      async close() {
        openImages.delete(path);
        await handle.close();
        k.fill(0);
      },
    };
    return image;
  },
};

/** Cuts an image file short (a truncated disk). */
export async function truncateImage(path: string, size: number): Promise<void> {
  await truncate(path, size);
}
