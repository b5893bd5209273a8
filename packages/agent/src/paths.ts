import { join } from 'node:path';

/**
 * Where the agent of a state directory listens: `$TANDEM_AGENT_SOCKET` when set; for the default
 * state directory `$XDG_RUNTIME_DIR/tandem/agent.sock` (the user's private runtime directory,
 * cleared at logout); else, or without `XDG_RUNTIME_DIR`, `<stateDir>/agent.sock`. A state
 * directory of its own (`--state-dir`, tests) thus always has its own agent.
 *
 * @example
 * ```ts
 * const socket = agentSocketPath('/home/me/.local/state/tandem', { defaultStateDir: true });
 * ```
 */
export function agentSocketPath(
  stateDir: string,
  options: { defaultStateDir?: boolean; env?: NodeJS.ProcessEnv } = {},
): string {
  const env = options.env ?? process.env;
  const explicit = env['TANDEM_AGENT_SOCKET'];
  if (explicit) return explicit;
  const runtime = env['XDG_RUNTIME_DIR'];
  if (options.defaultStateDir && runtime) return join(runtime, 'tandem', 'agent.sock');
  return join(stateDir, 'agent.sock');
}
