// What the CLI's real-libvirt tests share: the built `tandem` run as a process with --json,
// virsh on qemu:///system, and a small workspace on an empty qcow2 disk (not shipped).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const QEMU_URI = 'qemu:///system';
/** The built CLI (dist). */
export const TANDEM_BIN = fileURLToPath(new URL('../bin/tandem.js', import.meta.url));

/** One `tandem` process: its exit code, stdout parsed as JSON (undefined when it is not), both streams. */
export interface TandemProcessRun {
  code: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON a command printed
  json: any;
  stdout: string;
  stderr: string;
}

/** Runs `tandem --state-dir STATE --json ARGS...` as its own process. */
export async function tandemProcess(
  stateDir: string,
  args: readonly string[],
  timeoutMs = 180_000,
): Promise<TandemProcessRun> {
  const parse = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return undefined;
    }
  };
  try {
    const r = await run(process.execPath, [TANDEM_BIN, '--state-dir', stateDir, '--json', ...args], {
      timeout: timeoutMs,
    });
    return { code: 0, json: parse(r.stdout), stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, json: parse(e.stdout), stdout: e.stdout, stderr: e.stderr };
  }
}

/** virsh on qemu:///system, its output trimmed. */
export async function virsh(...args: string[]): Promise<string> {
  return (await run('virsh', ['-c', QEMU_URI, ...args], { env: { ...process.env, LC_ALL: 'C' } })).stdout.trim();
}

/** Powers off and undefines a VM left by a test, whatever state it is in. */
export async function purgeVm(vm: string): Promise<void> {
  await virsh('destroy', vm).catch(() => undefined);
  await virsh('undefine', vm, '--snapshots-metadata', '--managed-save', '--nvram').catch(() => undefined);
}

/** Writes `DIR/ws.yaml` for workspace `name` (64 MiB, 1 CPU) on a new empty `DIR/disk.qcow2`; returns the file. */
export async function smallWorkspace(dir: string, name: string, network: 'none' | 'nat' = 'none'): Promise<string> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), '64M']);
  const file = join(dir, 'ws.yaml');
  await writeFile(
    file,
    [
      'apiVersion: tandem/v1',
      'kind: Workspace',
      `metadata: { name: ${name}, version: 1.0.0 }`,
      'spec:',
      '  image: { source: ./disk.qcow2, format: qcow2 }',
      '  guestOs: other',
      '  hardware: { memory: { fixedMiB: 64 }, cpus: 1 }',
      `  network: { mode: ${network} }`,
      '',
    ].join('\n'),
  );
  return file;
}
