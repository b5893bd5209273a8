// What the CLI's real-libvirt tests share: the built `tandem` run as a process with --json,
// virsh on qemu:///system, and a small workspace on an empty qcow2 disk (not shipped).
import { execFile, spawn } from 'node:child_process';
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

/** Waits until `probe` gives a value (a throw counts as not yet), for at most `ms`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 240_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** An event as `tandem events --json` prints it. */
export interface PrintedEvent {
  id: string;
  type: string;
  workspace: string | null;
  session: string | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read each type's data
  data: any;
}

/** A running `tandem events --follow`: what it printed so far. */
export interface EventFollower {
  readonly events: PrintedEvent[];
  /** The types printed so far, in order (only `prefixes` when given). */
  types(...prefixes: string[]): string[];
  /** Waits for the `n`th event of `type` (1 by default) and returns it. */
  next(type: string, n?: number): Promise<PrintedEvent>;
  /** Ends the process. */
  stop(): Promise<void>;
}

/**
 * Runs `tandem --state-dir STATE --json events --follow -w WORKSPACE` (pushed live by the agent
 * when one runs) and collects each event it prints.
 */
export function followEvents(stateDir: string, workspace: string): EventFollower {
  const child = spawn(
    process.execPath,
    [TANDEM_BIN, '--state-dir', stateDir, '--json', 'events', '--follow', '-w', workspace],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const events: PrintedEvent[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as PrintedEvent);
    }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    events,
    types: (...prefixes) =>
      events.map((e) => e.type).filter((t) => prefixes.length === 0 || prefixes.some((p) => t.startsWith(p))),
    next: (type, n = 1) =>
      until(
        `event ${type} (${n}) from tandem events --follow${child.exitCode !== null ? `, which exited: ${stderr}` : ''}`,
        async () => {
          const found = events.filter((e) => e.type === type);
          return found.length >= n ? found[n - 1] : undefined;
        },
      ),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
