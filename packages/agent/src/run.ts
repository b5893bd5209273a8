import { HostAgent, type HostAgentOptions } from './host-agent.js';
import { AgentServer, type AgentServerOptions } from './server.js';

/** A running agent: the service and its socket. */
export interface RunningAgent {
  agent: HostAgent;
  server: AgentServer;
  /** Stops the socket and the agent (VMs keep running). */
  stop(): Promise<void>;
  /** Resolves when the agent stopped (a `shutdown` request, a signal, or {@link stop}). */
  stopped: Promise<void>;
}

/**
 * Starts the agent and its socket: what `tandem agent run` (and the systemd unit) runs. With
 * `signals`, SIGTERM and SIGINT stop it cleanly.
 *
 * @example
 * ```ts
 * const running = await runAgent({ stateDir, openAdapter, socketPath: agentSocketPath(stateDir) });
 * await running.stopped;
 * ```
 */
export async function runAgent(
  options: HostAgentOptions &
    Pick<AgentServerOptions, 'socketPath' | 'socketMode' | 'allowUid' | 'peerCredentials'> & { signals?: boolean },
): Promise<RunningAgent> {
  const agent = new HostAgent(options);
  let done!: () => void;
  const stopped = new Promise<void>((resolve) => (done = resolve));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await server.close().catch(() => undefined);
      await agent.close();
      if (options.signals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      done();
    })());
  const onSignal = (): void => void stop();
  const server = new AgentServer({
    agent,
    socketPath: options.socketPath,
    onShutdown: () => void stop(),
    ...(options.socketMode !== undefined ? { socketMode: options.socketMode } : {}),
    ...(options.allowUid !== undefined ? { allowUid: options.allowUid } : {}),
    ...(options.peerCredentials ? { peerCredentials: options.peerCredentials } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  await agent.start();
  try {
    await server.listen();
  } catch (err) {
    await agent.close();
    throw err;
  }
  if (options.signals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return { agent, server, stop, stopped };
}
