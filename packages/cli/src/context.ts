import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Global options every command sees. */
export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
  stateDir?: string;
}

/**
 * What a command gets: where state lives, how to print. Commands print through `out` so that
 * `--json` gives one JSON document (or JSON lines for progress) and nothing else on stdout.
 */
export interface CliContext {
  readonly stateDir: string;
  readonly json: boolean;
  readonly verbose: boolean;
  /** Prints a result: `data` as JSON with --json, else `text` (a string or lines). */
  result(data: unknown, text: string | readonly string[]): void;
  /** One JSON line with --json (progress, events), else `text` on stderr when given. */
  line(data: unknown, text?: string): void;
  /** Human-only information on stderr (never with --json). */
  info(text: string): void;
}

/**
 * The state directory: `--state-dir`, else `$TANDEM_HOME`, else `$XDG_STATE_HOME/tandem`,
 * else `~/.local/state/tandem`.
 */
export function resolveStateDir(explicit?: string): string {
  if (explicit) return resolve(explicit);
  const env = process.env['TANDEM_HOME'];
  if (env) return resolve(env);
  const xdg = process.env['XDG_STATE_HOME'];
  return join(xdg ? resolve(xdg) : join(homedir(), '.local', 'state'), 'tandem');
}

/** Builds the context from the global options. */
export function createContext(options: GlobalOptions): CliContext {
  const json = options.json === true;
  return {
    stateDir: resolveStateDir(options.stateDir),
    json,
    verbose: options.verbose === true,
    result(data, text) {
      if (json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
      else process.stdout.write((typeof text === 'string' ? text : text.join('\n')) + '\n');
    },
    line(data, text) {
      if (json) process.stdout.write(JSON.stringify(data) + '\n');
      else if (text !== undefined) process.stderr.write(text + '\n');
    },
    info(text) {
      if (!json) process.stderr.write(text + '\n');
    },
  };
}
