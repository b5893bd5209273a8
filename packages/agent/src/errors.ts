import { TandemError, type ErrorFault } from '@tandem/core';

type Options = { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean; fault?: ErrorFault };

/** A message on the agent's socket that is not valid JSON, too long, or not a known request. */
export class AgentProtocolError extends TandemError {
  override readonly name = 'AgentProtocolError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_AGENT_PROTOCOL' });
  }
}

/** The client speaks a newer major version of the agent API than this agent. */
export class AgentVersionError extends TandemError {
  override readonly name = 'AgentVersionError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_AGENT_VERSION' });
  }
}

/** The process on the other end of the socket is not the user who owns the agent. */
export class PeerRefusedError extends TandemError {
  override readonly name = 'PeerRefusedError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'user', ...options, code: 'TANDEM_AGENT_PEER_REFUSED' });
  }
}

/** No agent answers on the socket (none runs for this user, or it went away). */
export class AgentUnavailableError extends TandemError {
  override readonly name = 'AgentUnavailableError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'host', retryable: true, ...options, code: 'TANDEM_AGENT_UNAVAILABLE' });
  }
}

/** The uplink (management server) did not take a batch; the queue keeps it and retries. */
export class UplinkError extends TandemError {
  override readonly name = 'UplinkError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'host', retryable: true, ...options, code: 'TANDEM_UPLINK' });
  }
}
