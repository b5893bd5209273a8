/**
 * The check-in's one-round-trip write (issue 15): a signed request's nonce, its events and the
 * device's check-in time and state, for many concurrent requests at once, in one statement.
 * Declared beside the store contract (module augmentation of {@link ServerStore}) and optional:
 * a store without it is driven through `useNonce`, `getDevice`, `ingestEvents` and
 * `recordCheckIn` one after another, with the same answers.
 */
import type { StoredEvent } from './types.js';

/** One verified request's writes (its signature was checked before; its nonce was not). */
export interface CheckInWrite {
  /** The device that signed the request. */
  readonly device: string;
  readonly nonce: string;
  /** When the nonce may be forgotten (the request's time plus the request window). */
  readonly expiresAt: string;
  /** The check-in time to record, with `state`; both undefined for an event upload (no check-in). */
  readonly at?: string | undefined;
  readonly state?: unknown;
  /** The request's events; `device`, `receivedAt` set, `user` ignored (the device's user is written). */
  readonly events: readonly StoredEvent[];
}

/** What one {@link CheckInWrite} found and did. */
export type CheckInWriteResult =
  | {
      /** The nonce was new, the device enrolled and not revoked: everything was written. */
      readonly status: 'ok';
      /** The device's user as stored when the write ran (the events carry it). */
      readonly user: string;
      readonly inserted: number;
      readonly duplicates: number;
      /** The store-wide revision read by the same statement. */
      readonly revision: number;
    }
  /** The nonce was seen before: nothing was written. */
  | { readonly status: 'replayed' }
  /** No device with this id: nothing was written. */
  | { readonly status: 'unknown-device' }
  /** The device is revoked: only the nonce was written. */
  | { readonly status: 'revoked'; readonly revokedAt: string };

declare module './types.js' {
  interface ServerStore {
    /**
     * Several verified requests' nonces, events and check-ins in one atomic write (one round trip
     * on PostgreSQL), each answered as if made alone: a replayed nonce, an unknown or a revoked
     * device writes nothing of that request but its nonce. The items name distinct devices.
     * Optional; see {@link CheckInWrite}.
     */
    checkInGroup?(items: readonly CheckInWrite[]): Promise<CheckInWriteResult[]>;
  }
}
