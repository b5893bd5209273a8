import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { GuestOperationError, type ExecResult } from '@tandem/core/guest';
import type { ProgramRunner } from './run.js';

/**
 * The guest's allow-list of maintenance commands (`--allow-file`, JSON). The host names a
 * command by id; the program and its fixed arguments come from here, and extra arguments from
 * the host are accepted only when the entry has `extraArgs` and each one matches its pattern.
 * The host cannot add an entry or widen one: the file belongs to the guest's administrator.
 */
export const AllowListSchema = z.strictObject({
  commands: z.record(
    z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    z.strictObject({
      program: z.string().min(1),
      args: z.array(z.string()).default([]),
      /** A pattern (anchored) every extra argument from the host must match; absent: none allowed. */
      extraArgs: z
        .strictObject({ pattern: z.string().min(1), max: z.number().int().min(1).max(64).default(8) })
        .optional(),
      timeoutSeconds: z.number().int().min(1).max(86_400).default(600),
      description: z.string().optional(),
    }),
  ),
});

/** The allow-list. */
export type AllowList = z.infer<typeof AllowListSchema>;

/** Loads the allow-list; no file means nothing is allowed. Throws with the file's problem. */
export async function loadAllowList(file: string | undefined): Promise<AllowList> {
  if (!file) return { commands: {} };
  const text = await readFile(file, 'utf8');
  const parsed = AllowListSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Runs an allow-listed command. */
export async function runAllowed(
  list: AllowList,
  command: string,
  extra: readonly string[],
  run: ProgramRunner,
  signal: AbortSignal,
): Promise<ExecResult> {
  const entry = Object.hasOwn(list.commands, command) ? list.commands[command] : undefined;
  if (!entry) {
    throw new GuestOperationError(
      `"${command}" is not on this guest's allow-list.`,
      `"${command}" is not on this guest's allow-list`,
      {
        retryable: false,
        details: { guestCode: 'not-allowed' },
      },
    );
  }
  if (extra.length > 0) {
    const rule = entry.extraArgs;
    const pattern = rule ? new RegExp(`^(?:${rule.pattern})$`) : undefined;
    const bad = !rule || !pattern || extra.length > rule.max ? extra[0] : extra.find((a) => !pattern.test(a));
    if (bad !== undefined) {
      throw new GuestOperationError(
        `The allow-list entry "${command}" does not accept the argument "${bad}".`,
        `argument "${bad}" not allowed for ${command}`,
        { retryable: false, details: { guestCode: 'argument-not-allowed' } },
      );
    }
  }
  const timeout = AbortSignal.timeout(entry.timeoutSeconds * 1000);
  const r = await run(entry.program, [...entry.args, ...extra], { signal: AbortSignal.any([signal, timeout]) });
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated };
}
