import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import {
  HypervisorError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  type SnapshotInfo,
  type VmState,
} from '@tandem/core';
import type { DomainDisk } from './domain-facts.js';
import { dataFileOf } from './encrypted-data-file.js';

/** One file of an encrypted disk and the ciphertext copy a snapshot keeps of it. */
interface KeptFile {
  readonly file: string;
  readonly copy: string;
}

interface Entry {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly createdAt: string;
  parentId: string | null;
  readonly files: readonly KeptFile[];
}

interface Index {
  readonly version: 1;
  current: string | null;
  snapshots: Entry[];
}

/** The index of a VM's encrypted-disk snapshots: beside its first encrypted disk. */
export function encryptedSnapshotIndex(vm: string, disks: readonly DomainDisk[]): string | undefined {
  const first = disks.find((d) => d.encryption?.usage !== undefined);
  if (!first) return undefined;
  return join(dirname(first.overlayOf ?? first.path), `.tandem-snapshots`, `${encodeURIComponent(vm)}.json`);
}

/**
 * Snapshots of a stopped VM whose disks are LUKS qcow2, which libvirt cannot snapshot (stopped,
 * its qemu-img call lacks the key; running, QEMU's internal snapshot kills the QEMU process).
 * A snapshot is a copy of each encrypted disk's files as they are on disk, ciphertext copied
 * byte for byte (`cp --reflink=auto --sparse=always`, so a copy-on-write file system shares the
 * blocks): the disk's current file (the session's encrypted overlay when there is one, else the
 * image), and its raw data file in the `data-file` layout. No key is needed and no plaintext is
 * ever written; a revert copies them back (each through a temporary file and a rename, keeping the
 * owner and mode QEMU needs). An encrypted overlay's base is read-only under it and not copied.
 * The tree (parent, current) is kept in a JSON index beside the first encrypted disk.
 */
export class EncryptedDiskSnapshots {
  readonly #vm: string;
  readonly #index: string;
  readonly #disks: readonly DomainDisk[];

  constructor(vm: string, disks: readonly DomainDisk[]) {
    const index = encryptedSnapshotIndex(vm, disks);
    if (!index) throw new InvalidInputError(`VM "${vm}" has no encrypted disk.`, { details: { vm } });
    this.#vm = vm;
    this.#index = index;
    this.#disks = disks.filter((d) => d.encryption?.usage !== undefined);
  }

  /** Copies the encrypted disks' files; `state` must be stopped (checked by the caller). */
  async create(name: string, description: string | undefined, state: VmState): Promise<SnapshotInfo> {
    if (state !== 'stopped' && state !== 'crashed') {
      throw new InvalidStateError(
        `VM "${this.#vm}" has an encrypted disk and is ${state}: an encrypted disk is snapshotted while the VM is stopped (a copy of its ciphertext). Stop the VM, then take the snapshot.`,
        state,
        { details: { vm: this.#vm, snapshot: name, expected: ['stopped'] } },
      );
    }
    const index = await this.#read();
    if (index.snapshots.some((s) => s.name === name)) {
      throw new InvalidInputError(`VM "${this.#vm}" already has a snapshot named "${name}".`, {
        details: { vm: this.#vm, snapshot: name },
      });
    }
    const tag = randomUUID().slice(0, 8);
    const files: KeptFile[] = [];
    try {
      for (const file of this.#files()) {
        const copy = `${file}.tandem-snapshot-${tag}`;
        files.push({ file, copy });
        await copyCiphertext(file, copy);
      }
    } catch (err) {
      for (const f of files) await rm(f.copy, { force: true });
      throw err;
    }
    const entry: Entry = {
      id: name,
      name,
      ...(description !== undefined ? { description } : {}),
      createdAt: new Date().toISOString(),
      parentId: index.current,
      files,
    };
    index.snapshots.push(entry);
    index.current = entry.id;
    await this.#write(index);
    return info(entry, index.current);
  }

  async list(): Promise<SnapshotInfo[]> {
    const index = await this.#read();
    return index.snapshots.map((s) => info(s, index.current));
  }

  /** Copies the snapshot's files back over the disks; the VM must be stopped. */
  async revert(snapshot: string, state: VmState): Promise<void> {
    const index = await this.#read();
    const entry = this.#find(index, snapshot);
    if (state !== 'stopped' && state !== 'crashed') {
      throw new InvalidStateError(
        `VM "${this.#vm}" is ${state}: reverting its encrypted disks to "${entry.name}" overwrites them, so the VM must be stopped first.`,
        state,
        { details: { vm: this.#vm, snapshot, expected: ['stopped'] } },
      );
    }
    const now = new Set(this.#files());
    const missing = entry.files.filter((f) => !now.has(f.file));
    if (missing.length > 0) {
      throw new InvalidStateError(
        `Snapshot "${entry.name}" of VM "${this.#vm}" was taken of ${missing.map((f) => f.file).join(', ')}, which the VM no longer uses (a new image version, or its encrypted overlay was discarded or replaced since): it cannot be reverted to. Delete it with snapshot delete.`,
        'changed-disks',
        { details: { vm: this.#vm, snapshot, files: missing.map((f) => f.file) } },
      );
    }
    for (const f of entry.files) {
      if (!existsSync(f.copy)) {
        throw new NotFoundError(`The copy ${f.copy} that snapshot "${entry.name}" keeps of ${f.file} is gone.`, {
          details: { vm: this.#vm, snapshot, copy: f.copy },
        });
      }
    }
    for (const f of entry.files) await restoreCiphertext(f.copy, f.file);
    index.current = entry.id;
    await this.#write(index);
  }

  /** Deletes a snapshot (its copies); its children move to its parent, or go with it with `children`. */
  async delete(snapshot: string, children: boolean): Promise<void> {
    const index = await this.#read();
    const entry = this.#find(index, snapshot);
    const gone = new Set([entry.id]);
    if (children) {
      for (let grew = true; grew;) {
        grew = false;
        for (const s of index.snapshots) {
          if (!gone.has(s.id) && s.parentId !== null && gone.has(s.parentId)) {
            gone.add(s.id);
            grew = true;
          }
        }
      }
    }
    for (const s of index.snapshots) if (!gone.has(s.id) && s.parentId === entry.id) s.parentId = entry.parentId;
    if (index.current !== null && gone.has(index.current)) index.current = entry.parentId;
    const removed = index.snapshots.filter((s) => gone.has(s.id));
    index.snapshots = index.snapshots.filter((s) => !gone.has(s.id));
    await this.#write(index);
    for (const s of removed) for (const f of s.files) await rm(f.copy, { force: true });
  }

  #find(index: Index, snapshot: string): Entry {
    const entry = index.snapshots.find((s) => s.id === snapshot || s.name === snapshot);
    if (!entry) {
      throw new NotFoundError(`VM "${this.#vm}" has no snapshot "${snapshot}".`, {
        details: { vm: this.#vm, snapshot, known: index.snapshots.map((s) => s.name) },
      });
    }
    return entry;
  }

  /** The files that hold each encrypted disk's current contents. */
  #files(): string[] {
    return this.#disks.flatMap((d) => (existsSync(dataFileOf(d.path)) ? [d.path, dataFileOf(d.path)] : [d.path]));
  }

  async #read(): Promise<Index> {
    let text: string;
    try {
      text = await readFile(this.#index, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, current: null, snapshots: [] };
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as Index;
      if (parsed.version !== 1 || !Array.isArray(parsed.snapshots)) throw new Error('not a version 1 index');
      return parsed;
    } catch (err) {
      throw new InvalidInputError(
        `${this.#index} is not a Tandem snapshot index (${(err as Error).message}): move it away to start afresh.`,
        { cause: err, details: { vm: this.#vm, file: this.#index } },
      );
    }
  }

  async #write(index: Index): Promise<void> {
    await mkdir(dirname(this.#index), { recursive: true, mode: 0o700 });
    if (index.snapshots.length === 0) {
      await rm(this.#index, { force: true });
      return;
    }
    const tmp = `${this.#index}.${randomUUID().slice(0, 8)}.tmp`;
    await writeFile(tmp, JSON.stringify(index, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.#index);
  }
}

function info(e: Entry, current: string | null): SnapshotInfo {
  return {
    id: e.id,
    name: e.name,
    ...(e.description !== undefined ? { description: e.description } : {}),
    createdAt: e.createdAt,
    parentId: e.parentId,
    current: e.id === current,
    vmState: 'stopped',
  };
}

async function cp(from: string, to: string): Promise<void> {
  const r = await execa('cp', ['--reflink=auto', '--sparse=always', '--', from, to], {
    reject: false,
    all: true,
    stdin: 'ignore',
    env: { LC_ALL: 'C' },
  });
  if (r.exitCode !== 0) {
    throw new HypervisorError(`Could not copy ${from} to ${to}: ${String(r.all ?? '').trim()}`, {
      details: { from, to, output: String(r.all ?? ''), exitCode: r.exitCode },
    });
  }
}

/** A private copy of an encrypted disk file (mode 0600), written whole before it takes its name. */
async function copyCiphertext(file: string, copy: string): Promise<void> {
  const tmp = `${copy}.tmp`;
  try {
    await cp(file, tmp);
    await chmod(tmp, 0o600);
    await rename(tmp, copy);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Puts a kept copy back in place of `file`, atomically, with `file`'s owner and mode. */
async function restoreCiphertext(copy: string, file: string): Promise<void> {
  const was = await stat(file);
  const tmp = `${file}.tandem-revert.tmp`;
  try {
    await cp(copy, tmp);
    await chown(tmp, was.uid, was.gid);
    await chmod(tmp, was.mode & 0o7777);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
