import { existsSync } from 'node:fs';
import { AgentClient, agentSocketPath } from '@tandem/agent';
import { TandemError } from '@tandem/core';
import { resolveStateDir, type CliContext } from './context.js';

/** The socket of the agent that owns `ctx`'s state directory. */
export function cliAgentSocket(ctx: Pick<CliContext, 'stateDir'>): string {
  return agentSocketPath(ctx.stateDir, { defaultStateDir: ctx.stateDir === resolveStateDir(undefined) });
}

/**
 * A client of this user's agent, or undefined when none runs (no socket, or nothing answers).
 * `TANDEM_AGENT=off` makes the CLI act in-process even when an agent runs. An agent that refuses
 * (another user's, a newer major API) is an error, not a fallback.
 */
export async function connectAgent(ctx: Pick<CliContext, 'stateDir'>): Promise<AgentClient | undefined> {
  if (process.env['TANDEM_AGENT'] === 'off') return undefined;
  const socket = cliAgentSocket(ctx);
  if (!existsSync(socket)) return undefined;
  try {
    return await AgentClient.connect(socket, { client: 'tandem-cli' });
  } catch (err) {
    if (TandemError.is(err, 'TANDEM_AGENT_UNAVAILABLE')) return undefined;
    throw err;
  }
}

/**
 * Runs a session command through the agent when one runs for this user, else in-process with
 * one note saying so on stderr once it worked (never in --json output, never after an error).
 */
export async function throughAgent<T>(
  ctx: CliContext,
  viaAgent: (client: AgentClient) => Promise<T>,
  inProcess: () => Promise<T>,
  options: { inProcessBecause?: string } = {},
): Promise<T> {
  const client = options.inProcessBecause ? undefined : await connectAgent(ctx);
  if (!client) {
    const result = await inProcess();
    // After the command, and only when it worked: an error stays one line on stderr.
    ctx.info(
      options.inProcessBecause
        ? `note: ${options.inProcessBecause}; ran in-process`
        : 'note: no tandem agent runs for this user; ran in-process (start one with: tandem agent run, or tandem agent install)',
    );
    return result;
  }
  try {
    return await viaAgent(client);
  } finally {
    client.close();
  }
}
