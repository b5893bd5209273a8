import type { EncryptedImage, EncryptedImageStore } from '@tandem/core/delivery';

/**
 * Encrypted images for the mock hypervisor: the image lives in this process's memory only, so
 * nothing of it reaches a disk at all. Real endpoints use the hypervisor's own at-rest
 * encryption instead (`libvirtEncryptedImages()` from `@tandem/adapter-libvirt`: LUKS qcow2).
 */
export function memoryEncryptedImages(): EncryptedImageStore & { readonly images: Map<string, Buffer> } {
  const images = new Map<string, Buffer>();
  const keys = new Map<string, string>();
  const open = (path: string, key: Uint8Array): EncryptedImage => {
    const data = images.get(path);
    if (!data || keys.get(path) !== Buffer.from(key).toString('hex'))
      throw new Error(`${path}: no such image, or another key`);
    return {
      size: data.length,
      read: (offset, length) => Promise.resolve(Buffer.from(data.subarray(offset, offset + length))),
      write: (offset, bytes) => {
        data.set(bytes, offset);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  };
  return {
    format: 'qcow2',
    images,
    create(path, size, key) {
      images.set(path, Buffer.alloc(size));
      keys.set(path, Buffer.from(key).toString('hex'));
      return Promise.resolve(open(path, key));
    },
    open: (path, key) => Promise.resolve(open(path, key)),
  };
}
