import type { CommandResult, CommandRunner, RunningCommand } from '@tandem/core';
import { mapVBoxError, parseErrorLines } from './errors.js';

/** Options of one VBoxManage call. */
export interface CallOptions {
  /** Written to stdin (passwords go here, never on the command line). */
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * VBoxManage on one host: a program path, the environment it runs with (`LANG=C` so messages
 * are in English and parseable, plus the caller's own, such as `VBOX_USER_HOME`) and a timeout.
 */
export class VBoxManageCli {
  readonly #env: Readonly<Record<string, string>>;

  constructor(
    readonly runner: CommandRunner,
    readonly path: string,
    env: Readonly<Record<string, string>>,
    readonly timeoutMs: number,
  ) {
    this.#env = { ...env, LANG: 'C', LC_ALL: 'C' };
  }

  /** Runs VBoxManage and returns whatever happened. */
  exec(args: readonly string[], options: CallOptions = {}): Promise<CommandResult> {
    return this.runner.run({
      command: this.path,
      args,
      env: this.#env,
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /**
   * Runs VBoxManage and throws the typed error for a non-zero exit code or for any
   * `VBoxManage: error:` line, which VirtualBox sometimes prints with exit code 0.
   */
  async run(args: readonly string[], what: string, options: CallOptions = {}): Promise<CommandResult> {
    const result = await this.exec(args, options);
    const report = parseErrorLines(`${result.stderr}\n${result.stdout}`);
    if (result.exitCode !== 0 || report) throw mapVBoxError(result, what, report);
    return result;
  }

  /** Starts a long-running VBoxManage (guestcontrol run). */
  start(args: readonly string[], options: CallOptions = {}): Promise<RunningCommand> {
    return this.runner.start({
      command: this.path,
      args,
      env: this.#env,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
}
