import { Command, CommanderError } from 'commander';
import { TandemError } from '@tandem/core';
import { ensurePrivateDir } from '@tandem/core/crypto';
import { createContext, type CliContext, type GlobalOptions } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { registerCommands } from './commands/index.js';

/** Given to each command's register function. */
export interface CommandHost {
  /**
   * Wraps an action: builds the context from the global options, runs the action, and turns
   * errors into one clear line (the stack only with --verbose) and a documented exit code.
   */
  run<A extends unknown[]>(
    action: (ctx: CliContext, ...args: A) => Promise<void | number>,
  ): (...args: unknown[]) => Promise<void>;
}

/** Builds the `tandem` program. Exposed for tests, which run it in-process. */
export function buildProgram(): { program: Command; exitCode: () => number } {
  let code: number = ExitCode.ok;
  const program = new Command('tandem');
  program
    .description('Tandem: run a managed, policy-controlled workspace VM beside the host desktop')
    .version('0.1.0', '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    // Options before a command are the program's, so `tandem pull --version V` is pull's own.
    // The global options are added to every command too, so they work after it as well.
    .enablePositionalOptions()
    .exitOverride();
  addGlobalOptions(program);

  const host: CommandHost = {
    run<A extends unknown[]>(action: (ctx: CliContext, ...args: A) => Promise<void | number>) {
      return async (...args: unknown[]) => {
        const command = args[args.length - 1] as Command;
        const ctx = createContext(command.optsWithGlobals<GlobalOptions>());
        try {
          // Sessions, events and keys live here: private to this user whatever the umask.
          await ensurePrivateDir(ctx.stateDir);
          const result = await action(ctx, ...(args.slice(0, -1) as A));
          if (typeof result === 'number') code = result;
        } catch (err) {
          code = exitCodeFor(err);
          reportError(ctx, err);
        }
      };
    },
  };
  registerCommands(program, host);
  // Global options work before or after the command (tandem --json status, tandem status --json).
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      addGlobalOptions(sub);
      inherit(sub);
    }
  };
  inherit(program);
  return { program, exitCode: () => code };
}

function addGlobalOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable output: one JSON document, or JSON lines for progress')
    .option('-v, --verbose', 'show stack traces and hypervisor output on errors')
    .option(
      '--state-dir <dir>',
      'where sessions and the mock hypervisor keep state (default $TANDEM_HOME or ~/.local/state/tandem)',
    );
}

function reportError(ctx: CliContext, err: unknown): void {
  if (ctx.json) {
    const body = TandemError.is(err)
      ? err.toJSON()
      : { name: 'Error', code: 'TANDEM_INTERNAL', message: String((err as Error).message ?? err) };
    process.stdout.write(JSON.stringify({ error: body }, null, 2) + '\n');
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tandem: ${message}\n`);
  if (ctx.verbose) {
    if (TandemError.is(err) && Object.keys(err.details).length > 0)
      process.stderr.write(`details: ${JSON.stringify(err.details, null, 2)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  } else if (!TandemError.is(err)) {
    process.stderr.write('tandem: this is a bug; run again with --verbose and report the output\n');
  }
}

/** Runs the program with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const { program, exitCode } = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return ExitCode.ok;
      return ExitCode.usage;
    }
    throw err;
  }
  return exitCode();
}
