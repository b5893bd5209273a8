import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HostError } from '@tandem/core';

const run = promisify(execFile);

/**
 * Hands `data` to a child process through a named pipe in a private directory: the bytes
 * live only in the kernel's pipe buffer, never in a file or on a command line. Tools that
 * read a secret "from a file" (qemu-img's `file=`, virsh's `--file`) get the pipe's path;
 * stdin will not do, because Node gives children a socket there, which those tools cannot
 * open by path.
 */
export async function withPipedSecret<T>(data: string | Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-key-'));
  const fifo = join(dir, 'key');
  try {
    try {
      await run('mkfifo', ['-m', '600', fifo]);
    } catch (err) {
      throw new HostError(`Cannot create a named pipe for a key hand-over (mkfifo): ${(err as Error).message}.`, {
        cause: err,
      });
    }
    let delivered = false;
    // Opening for writing waits until the child opens the pipe for reading.
    const writer = open(fifo, 'w').then(async (fh) => {
      try {
        await fh.write(typeof data === 'string' ? Buffer.from(data) : data);
      } finally {
        await fh.close();
        delivered = true;
      }
    });
    writer.catch(() => undefined);
    try {
      return await use(fifo);
    } finally {
      if (!delivered) {
        // The child never read it (it failed first): open a reader so the pending writer ends.
        const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
        await writer.catch(() => undefined);
        await reader?.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `use` with `content` in a private temporary file (for definitions, not secrets). */
export async function withTempFile<T>(content: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-xml-'));
  const file = join(dir, 'definition.xml');
  try {
    await writeFile(file, content, { mode: 0o600 });
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
