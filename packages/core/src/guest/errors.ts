import { TandemError, type ErrorFault } from '../errors.js';

type Options = { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean; fault?: ErrorFault };

/**
 * The guest agent cannot be reached: the channel does not open, the agent does not say hello,
 * or it went silent. Retryable: the guest may still be booting or rebooting.
 *
 * @example
 * ```ts
 * try { await conn.open({ timeoutMs: 30_000 }); }
 * catch (err) { if (TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE')) console.error('is the agent installed?'); }
 * ```
 */
export class AgentUnreachableError extends TandemError {
  override readonly name = 'AgentUnreachableError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'host', retryable: true, ...options, code: 'TANDEM_AGENT_UNREACHABLE' });
  }
}

/**
 * The agent answered, but did not advertise the capability a call needs (an older agent, or a
 * guest OS where it is not available). Not retryable: install an agent that has it.
 */
export class CapabilityMissingError extends TandemError {
  override readonly name = 'CapabilityMissingError';
  readonly capability: string;
  constructor(message: string, capability: string, options: Options = {}) {
    super(message, {
      fault: 'user',
      ...options,
      code: 'TANDEM_AGENT_CAPABILITY',
      details: { capability, ...options.details },
    });
    this.capability = capability;
  }
}

/** The other end sent something the protocol does not allow: malformed, oversized, unexpected. */
export class GuestProtocolError extends TandemError {
  override readonly name = 'GuestProtocolError';
  constructor(message: string, options: Options = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_GUEST_PROTOCOL' });
  }
}

/**
 * The agent tried and failed: `details.guestCode` and `details.guestMessage` are the guest's own
 * code and words (realm's or PowerShell's message); `retryable` is the agent's judgement.
 */
export class GuestOperationError extends TandemError {
  override readonly name = 'GuestOperationError';
  readonly guestMessage: string;
  constructor(message: string, guestMessage: string, options: Options = {}) {
    super(message, { fault: 'host', ...options, code: 'TANDEM_GUEST_FAILED' });
    this.guestMessage = guestMessage;
  }
}
