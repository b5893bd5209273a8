import type { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import type { DeviceKeys } from '../crypto/device-key.js';
import type { AnyTandemEvent } from '../events/types.js';
import { ManagementError } from './errors.js';
import { newNonce, SIGNATURE_HEADERS, signingInput } from './request-signing.js';
import { ManagementTransport, readManagementReply, type TransportReply } from './transport.js';
import {
  AssignmentsReplySchema,
  CheckInReplySchema,
  EnrollReplySchema,
  EnvelopeReplySchema,
  EventUploadReplySchema,
  ROUTES,
  SignInReplySchema,
  type AssignmentsReply,
  type CheckInReply,
  type CheckInRequest,
  type EnrollReply,
  type EnvelopeReply,
  type EventUploadReply,
  type SignInReply,
} from './wire.js';

/** How the client reaches the server. */
export interface ManagementClientOptions {
  /** `https://tandem.corp.example:8443` (http:// only for tests on loopback). */
  readonly baseUrl: string;
  /** The device's keys: every request is signed with them. */
  readonly device: DeviceKeys;
  /** PEM of the CA (or the self-signed certificate) to trust instead of the system's. */
  readonly ca?: string | undefined;
  /** Attempts for a retryable failure (unreachable, 5xx, 429); default 4. */
  readonly attempts?: number;
  /** First retry delay in ms, doubled each time; default 200. */
  readonly retryDelayMs?: number;
  /** A request's time limit in ms; default 30 000. */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /** How to wait between attempts (tests pass their own). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Options of one call. */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  });

/**
 * The endpoint's client of the management server: enrollment, sign-in, check-in, event upload
 * and envelope fetch. Every request is signed by the device's Ed25519 key (a fresh timestamp and
 * nonce each attempt), every reply checked against the wire schemas, every failure a
 * {@link ManagementError}. Retryable failures (the server unreachable, 5xx, 429) are retried with
 * a doubling delay; events carry their ids, so a retried upload never duplicates one.
 *
 * @example
 * ```ts
 * const { device } = await openEndpointKeys(keysDirOf(stateDir));
 * const client = new ManagementClient({ baseUrl: 'https://tandem.corp.example:8443', device, ca });
 * await client.enroll({ user: 'ana', password, hostName: 'pc-1' });
 * const reply = await client.checkIn({ events: [] });
 * ```
 */
export class ManagementClient {
  readonly baseUrl: URL;
  readonly #o: ManagementClientOptions;
  readonly #transport: ManagementTransport;
  readonly #clock: Clock;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(options: ManagementClientOptions) {
    this.#transport = new ManagementTransport({
      baseUrl: options.baseUrl,
      ca: options.ca,
      timeoutMs: options.timeoutMs,
    });
    this.baseUrl = this.#transport.baseUrl;
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? defaultSleep;
  }

  /** Signs `user` in and enrolls this device (its public keys) for them. */
  async enroll(
    input: { user: string; password: string; hostName: string },
    options: CallOptions = {},
  ): Promise<EnrollReply> {
    const body = {
      ...input,
      device: { sealingKey: this.#o.device.publicKey.sealingKey, signingKey: this.#o.device.publicKey.signingKey },
    };
    return this.#call('POST', ROUTES.enroll, body, EnrollReplySchema, options);
  }

  /** Signs a user in on this (enrolled) device; the device's user becomes them. */
  async signIn(input: { user: string; password: string }, options: CallOptions = {}): Promise<SignInReply> {
    return this.#call('POST', ROUTES.signIn, input, SignInReplySchema, options);
  }

  /** Sends the endpoint's state and queued events; gets what changed (or `unchanged`). */
  async checkIn(input: CheckInRequest, options: CallOptions = {}): Promise<CheckInReply> {
    return this.#call('POST', ROUTES.checkIn, input, CheckInReplySchema, options);
  }

  /** Uploads events outside a check-in (idempotent by event id). */
  async uploadEvents(events: readonly AnyTandemEvent[], options: CallOptions = {}): Promise<EventUploadReply> {
    return this.#call('POST', ROUTES.events, { events }, EventUploadReplySchema, options);
  }

  /** An envelope for `workspace`, sealed for this device and its user. */
  async fetchEnvelope(workspace: string, options: CallOptions & { user?: string } = {}): Promise<EnvelopeReply> {
    const body = options.user === undefined ? { workspace } : { workspace, user: options.user };
    return this.#call('POST', ROUTES.envelope, body, EnvelopeReplySchema, options);
  }

  /** The workspaces the device's user gets. */
  async assignments(options: CallOptions & { user?: string } = {}): Promise<AssignmentsReply> {
    const body = options.user === undefined ? {} : { user: options.user };
    return this.#call('POST', ROUTES.assignments, body, AssignmentsReplySchema, options);
  }

  async #call<S extends z.ZodType>(
    method: string,
    path: string,
    payload: unknown,
    schema: S,
    options: CallOptions,
  ): Promise<z.output<S>> {
    const attempts = Math.max(1, this.#o.attempts ?? 4);
    let delay = this.#o.retryDelayMs ?? 200;
    const body = Buffer.from(JSON.stringify(payload), 'utf8');
    for (let attempt = 1; ; attempt++) {
      try {
        return readManagementReply(await this.#send(method, path, body, options.signal), schema);
      } catch (err) {
        if (!(err instanceof ManagementError) || !err.retryable || attempt >= attempts || options.signal?.aborted)
          throw err;
        await this.#sleep(delay, options.signal);
        delay *= 2;
      }
    }
  }

  async #send(method: string, path: string, body: Buffer, signal: AbortSignal | undefined): Promise<TransportReply> {
    const device = this.#o.device;
    const time = new Date(this.#clock.now()).toISOString();
    const nonce = newNonce();
    const signature = await device.sign(
      signingInput({ method, path: this.#transport.pathOf(path), device: device.deviceId, time, nonce, body }),
    );
    return this.#transport.send({
      method,
      path,
      body,
      signal,
      headers: {
        [SIGNATURE_HEADERS.device]: device.deviceId,
        [SIGNATURE_HEADERS.time]: time,
        [SIGNATURE_HEADERS.nonce]: nonce,
        [SIGNATURE_HEADERS.signature]: signature.toString('base64url'),
      },
    });
  }
}
