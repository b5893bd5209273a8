import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquirePidLock,
  ConflictError,
  NotFoundError,
  type SessionState,
  type VmSpec,
  type VmSpecChange,
  type Workspace,
} from '@tandem/core';
import { fsyncDirectory, writeFileAtomic } from './atomic-file.js';

/**
 * What Tandem remembers about a session: the CLI between invocations, the host agent across its
 * restarts (both read and write the same files). One JSON file per workspace in
 * `<state dir>/sessions/`. The VM itself lives in the hypervisor; this only says which adapter
 * drives it and what Tandem-level state (the lock) it has.
 */
export interface SessionRecord {
  id: string;
  workspace: string;
  /** The workspace file the session was opened from. */
  file: string;
  /** The validated workspace, so the session works even if the file moves. */
  spec: Workspace;
  adapter: { name: string; options: Record<string, string> };
  vm: string;
  /** The session state when the last command ended. */
  state: SessionState;
  /** Policy layer files (`kind: PolicyLayer`) above the workspace file's own, absolute paths. */
  layers?: string[];
  /** The spec the VM is defined with, as far as Tandem defined it (disks, memory, CPUs, network). */
  vmSpec?: VmSpec;
  /** A newer workspace version whose VM spec waits for the next start (`tandem up`). */
  pendingUpdate?: { fromVersion: string | null; toVersion: string; changes: VmSpecChange[] };
  createdAt: string;
  updatedAt: string;
}

/**
 * Tandem's private state directory, shared by the CLI and the host agent: session records, the
 * mock hypervisor's state, the event store, VM locks.
 *
 * @example
 * ```ts
 * const state = new StateDir('/home/me/.local/state/tandem');
 * for (const record of state.list()) console.log(record.workspace, record.state);
 * ```
 */
export class StateDir {
  constructor(readonly root: string) {}

  get sessionsDir(): string {
    return join(this.root, 'sessions');
  }

  get mockStateFile(): string {
    return join(this.root, 'mock', 'hypervisor.json');
  }

  get eventsFile(): string {
    return join(this.root, 'events.sqlite');
  }

  list(): SessionRecord[] {
    if (!existsSync(this.sessionsDir)) return [];
    return readdirSync(this.sessionsDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(this.sessionsDir, f), 'utf8')) as SessionRecord)
      .sort((a, b) => a.workspace.localeCompare(b.workspace));
  }

  find(workspace: string): SessionRecord | undefined {
    const file = join(this.sessionsDir, `${workspace}.json`);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SessionRecord) : undefined;
  }

  /**
   * The session a command means: the named workspace's, or the only one there is. Names the
   * candidates when it cannot tell.
   */
  resolve(workspace?: string): SessionRecord {
    if (workspace) {
      const r = this.find(workspace);
      if (!r) {
        throw new NotFoundError(
          `No session for workspace "${workspace}". Start one with: tandem up <workspace file>.`,
          {
            details: { workspace, known: this.list().map((x) => x.workspace) },
          },
        );
      }
      return r;
    }
    const all = this.list();
    if (all.length === 1) return all[0]!;
    if (all.length === 0) throw new NotFoundError('There is no session. Start one with: tandem up <workspace file>.');
    throw new NotFoundError(
      `There are ${all.length} sessions (${all.map((x) => x.workspace).join(', ')}): name the workspace.`,
      {
        details: { known: all.map((x) => x.workspace) },
      },
    );
  }

  /**
   * Saves atomically and durably (temporary file, fsync, rename, fsync of the directory): a crash
   * or a power loss leaves the old record or the new one, never half of one.
   */
  save(record: SessionRecord): void {
    writeFileAtomic(join(this.sessionsDir, `${record.workspace}.json`), JSON.stringify(record, null, 2));
  }

  /** Forgets a session (durably: the directory is flushed after the unlink). */
  remove(workspace: string): void {
    const file = join(this.sessionsDir, `${workspace}.json`);
    if (existsSync(file)) {
      unlinkSync(file);
      fsyncDirectory(this.sessionsDir);
    }
  }

  /**
   * Holds an exclusive lock on `vm` while `fn` runs, so two `tandem` processes never drive one
   * VM at once. A lock left by a dead process is taken over.
   */
  async withVmLock<T>(vm: string, fn: () => Promise<T>): Promise<T> {
    const release = await acquirePidLock(
      join(this.root, 'locks', `${encodeURIComponent(vm)}.lock`),
      (pid) =>
        new ConflictError(`Another tandem command (pid ${pid}) is driving VM "${vm}"; wait for it to finish.`, {
          details: { vm, pid },
        }),
    );
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}
