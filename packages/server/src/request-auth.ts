import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '@tandem/core';
import { REQUEST_WINDOW_MS, SIGNATURE_HEADERS, signingInput, verifyDeviceSignature } from '@tandem/core/management';
import { ApiError } from './errors.js';
import type { DeviceRecord, ServerStore } from './store/types.js';

/** The signature headers of a request, checked for shape. */
export interface RequestSignature {
  readonly device: string;
  readonly time: string;
  readonly nonce: string;
  readonly signature: string;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** Reads the signature headers; 401 `unsigned` when one is missing or malformed. */
export function readSignature(headers: IncomingHttpHeaders): RequestSignature {
  const device = header(headers, SIGNATURE_HEADERS.device);
  const time = header(headers, SIGNATURE_HEADERS.time);
  const nonce = header(headers, SIGNATURE_HEADERS.nonce);
  const signature = header(headers, SIGNATURE_HEADERS.signature);
  if (
    device === undefined ||
    !/^[0-9a-f]{32}$/.test(device) ||
    time === undefined ||
    time.length > 40 ||
    nonce === undefined ||
    !/^[A-Za-z0-9_-]{16,64}$/.test(nonce) ||
    signature === undefined ||
    signature.length > 100
  )
    throw new ApiError(
      401,
      'TANDEM_AUTH',
      'unsigned',
      'This request is not signed by an enrolled device; sign in with `tandem login SERVER` first.',
    );
  return { device, time, nonce, signature };
}

/**
 * Checks a request's signature against `signingKey`, its timestamp against the clock (within
 * {@link REQUEST_WINDOW_MS}) and its nonce against the store (each once, for every process).
 */
export async function checkSignature(
  store: Pick<ServerStore, 'useNonce'>,
  clock: Clock,
  sig: RequestSignature,
  signingKey: string,
  request: { method: string; path: string; body: Uint8Array },
): Promise<void> {
  const t = verifyRequest(clock, sig, signingKey, request);
  const fresh = await store.useNonce(sig.device, sig.nonce, new Date(t + REQUEST_WINDOW_MS).toISOString());
  if (!fresh) throw replayed();
}

/** The 401 of a request whose nonce was seen before. */
export function replayed(): ApiError {
  return new ApiError(401, 'TANDEM_AUTH', 'replayed', 'This request was seen before (a replay); it was refused.');
}

/**
 * The part of {@link checkSignature} that needs no store: the signature against `signingKey`
 * and the timestamp against the clock. Returns the request's time (ms); the caller must still
 * use the nonce (the check-in does so in its one grouped write).
 */
export function verifyRequest(
  clock: Clock,
  sig: RequestSignature,
  signingKey: string,
  request: { method: string; path: string; body: Uint8Array },
): number {
  const data = signingInput({ ...request, device: sig.device, time: sig.time, nonce: sig.nonce });
  if (!verifyDeviceSignature(signingKey, data, sig.signature))
    throw new ApiError(401, 'TANDEM_AUTH', 'bad-signature', "The request's signature does not match the device's key.");
  const t = Date.parse(sig.time);
  const now = clock.now();
  if (!Number.isFinite(t) || Math.abs(now - t) > REQUEST_WINDOW_MS)
    throw new ApiError(
      401,
      'TANDEM_AUTH',
      'stale-request',
      `The request's time (${sig.time}) is more than ${REQUEST_WINDOW_MS / 60000} minutes from the server's (${new Date(now).toISOString()}); set the device's clock right (NTP).`,
    );
  return t;
}

/** The 401 of a request from a device this server does not know. */
export function unknownDevice(): ApiError {
  return new ApiError(
    401,
    'TANDEM_AUTH',
    'unknown-device',
    'This device is not enrolled with this server; sign in with `tandem login SERVER`.',
  );
}

/** The 403 of a request from a revoked device. */
export function revokedDevice(revokedAt: string): ApiError {
  return new ApiError(
    403,
    'TANDEM_AUTH',
    'revoked',
    `This device was revoked at ${revokedAt}; its envelopes and cached credentials must be deleted. Ask your administrator.`,
  );
}

/** Authenticates a request from an enrolled device; returns its record. */
export async function authenticateDevice(
  store: Pick<ServerStore, 'getDevice' | 'useNonce'>,
  clock: Clock,
  headers: IncomingHttpHeaders,
  request: { method: string; path: string; body: Uint8Array },
): Promise<DeviceRecord> {
  const sig = readSignature(headers);
  const device = await store.getDevice(sig.device);
  if (!device) throw unknownDevice();
  await checkSignature(store, clock, sig, device.signingKey, request);
  if (device.revokedAt) throw revokedDevice(device.revokedAt);
  return device;
}
