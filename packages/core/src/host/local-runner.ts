import type { execa as execaFunction, ResultPromise } from 'execa';
import { CancelledError, HostError, TimeoutError } from '../errors.js';
import type { CommandRequest, CommandResult, CommandRunner, RunningCommand } from './types.js';
import { assertRequest } from './validate.js';

const MAX_BUFFER = 64 * 1024 * 1024;

interface ExecaOutcome {
  exitCode?: number;
  signal?: string;
  stdout?: unknown;
  stderr?: unknown;
  timedOut?: boolean;
  isCanceled?: boolean;
  failed?: boolean;
  code?: string;
  message?: string;
  originalMessage?: string;
}

/**
 * Runs programs on this machine through execa, with an argument array and no shell.
 *
 * @example
 * ```ts
 * const runner = new LocalRunner();
 * const { exitCode, stdout } = await runner.run({ command: 'VBoxManage', args: ['--version'] });
 * ```
 */
export class LocalRunner implements CommandRunner {
  readonly description = 'local';
  readonly platform: 'posix' | 'windows' = process.platform === 'win32' ? 'windows' : 'posix';
  readonly remote = false;

  async run(request: CommandRequest): Promise<CommandResult> {
    assertRequest(request);
    if (request.signal?.aborted) throw cancelled(request);
    const outcome = (await spawn(await loadExeca(), request, true)) as ExecaOutcome;
    return toResult(request, outcome);
  }

  async start(request: CommandRequest): Promise<RunningCommand> {
    assertRequest(request);
    if (request.signal?.aborted) throw cancelled(request);
    const sub = spawn(await loadExeca(), request, false);
    await new Promise<void>((resolve) => {
      sub.once('spawn', () => resolve());
      sub.once('error', () => resolve());
    });
    const result = Promise.resolve(sub).then((outcome) => toResult(request, outcome as ExecaOutcome));
    // The caller may never await `result`; an unobserved rejection must not crash the process.
    result.catch(() => undefined);
    return {
      ...(sub.pid === undefined ? {} : { pid: sub.pid }),
      argv: [request.command, ...(request.args ?? [])],
      result,
      kill: () => {
        sub.kill();
      },
    };
  }

  async close(): Promise<void> {}
}

type Execa = typeof execaFunction;
let execaModule: Promise<Execa> | undefined;

/** execa loads on the first command, not when the core is imported. */
function loadExeca(): Promise<Execa> {
  execaModule ??= import('execa').then((m) => m.execa);
  return execaModule;
}

function spawn(execa: Execa, request: CommandRequest, withTimeout: boolean): ResultPromise {
  return execa(request.command, [...(request.args ?? [])], {
    reject: false,
    shell: false,
    windowsHide: true,
    stripFinalNewline: false,
    maxBuffer: MAX_BUFFER,
    extendEnv: true,
    env: { ...request.env },
    ...(request.input === undefined ? { stdin: 'ignore' as const } : { input: request.input }),
    ...(withTimeout && request.timeoutMs !== undefined ? { timeout: request.timeoutMs } : {}),
    ...(request.signal ? { cancelSignal: request.signal } : {}),
    forceKillAfterDelay: 2_000,
  });
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return '';
}

function toResult(request: CommandRequest, o: ExecaOutcome): CommandResult {
  const base = { command: request.command, args: request.args ?? [] };
  const stdout = text(o.stdout);
  const stderr = text(o.stderr);
  if (o.timedOut) {
    throw new TimeoutError(
      `${request.command} did not finish within ${request.timeoutMs} ms and was stopped. Retry, or allow more time.`,
      { details: { ...base, timeoutMs: request.timeoutMs, stdout, stderr } },
    );
  }
  if (o.isCanceled) throw cancelled(request);
  if (o.failed && o.exitCode === undefined && o.signal === undefined) {
    const notFound = o.code === 'ENOENT';
    throw new HostError(
      notFound
        ? `Cannot run ${request.command}: no such program. Install it, or give its full path in the adapter's options.`
        : `Cannot run ${request.command}: ${o.originalMessage ?? o.message ?? 'it failed to start'}.`,
      { details: { ...base, code: o.code }, retryable: !notFound },
    );
  }
  return {
    ...base,
    exitCode: o.exitCode ?? null,
    ...(o.signal ? { signal: o.signal } : {}),
    stdout,
    stderr,
  };
}

function cancelled(request: CommandRequest): CancelledError {
  return new CancelledError(`${request.command} was cancelled.`, {
    details: { command: request.command, args: request.args ?? [] },
  });
}
