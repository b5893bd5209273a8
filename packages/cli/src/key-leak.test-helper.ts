// The key-leak search of the CLI's real encrypted-workspace tests (not shipped): a key, raw and
// in hex, base64 and base64url, looked for in the argv and environment of every tool the CLI runs
// (each goes through a recording shim), of every process sampled while a VM starts (through
// /proc, QEMU's included), and in texts (output, events, logs) and files.
import { execFile } from 'node:child_process';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The tools the CLI and the libvirt adapter run, for {@link recordingShims}. */
export const KEY_TOOLS = ['virsh', 'qemu-img', 'qemu-nbd', 'mkfifo'] as const;

/**
 * Puts a shim for each tool in `dir` (put it first on PATH) that appends the call's argv, one
 * line, and its environment to `log` before it runs the real tool.
 */
export async function recordingShims(dir: string, log: string, tools: readonly string[] = KEY_TOOLS): Promise<void> {
  for (const tool of tools) {
    const real = (await run('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    const shim = join(dir, tool);
    await writeFile(
      shim,
      `#!/bin/sh\n{ printf '%s ' "$0" "$@"; printf '\\n'; env; } >> '${log}'\nexec '${real}' "$@"\n`,
    );
    await chmod(shim, 0o755);
  }
}

/** Every file under `dir`, recursively (none when it does not exist). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** Reads every process's argv and environment over and over until stopped. */
export function sampleProcesses(): { stop: () => Promise<{ cmdlines: Set<string>; environs: Set<string> }> } {
  const cmdlines = new Set<string>();
  const environs = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const pids = (await readdir('/proc').catch(() => [])).filter((p) => /^\d+$/.test(p));
      await Promise.all(
        pids.map(async (pid) => {
          const cmd = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
          if (cmd && cmd.length > 0) cmdlines.add(cmd.toString('latin1').replaceAll('\0', ' '));
          const env = await readFile(`/proc/${pid}/environ`).catch(() => undefined);
          if (env && env.length > 0) environs.add(env.toString('latin1').replaceAll('\0', '\n'));
        }),
      );
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { cmdlines, environs };
    },
  };
}

/** The text forms a key could leak in: hex (both cases), base64 and base64url. */
export function keyForms(keys: readonly Buffer[]): string[] {
  return keys.flatMap((k) => [
    k.toString('hex'),
    k.toString('hex').toUpperCase(),
    k.toString('base64'),
    k.toString('base64url'),
  ]);
}

/**
 * Where any of `keys` shows: each of `texts` (named) holding one of its text forms, each of
 * `files` holding it raw or in a text form. Empty when nowhere.
 */
export async function keyLeaks(
  keys: readonly Buffer[],
  where: { texts?: readonly [string, string][]; files?: readonly string[] },
): Promise<string[]> {
  const forms = keyForms(keys);
  const found: string[] = [];
  for (const [name, text] of where.texts ?? []) if (forms.some((f) => text.includes(f))) found.push(name);
  const needles = [...keys, ...forms.map((f) => Buffer.from(f))];
  for (const file of where.files ?? []) {
    const data = await readFile(file).catch(() => Buffer.alloc(0));
    if (needles.some((n) => data.includes(n))) found.push(file);
  }
  return found;
}
