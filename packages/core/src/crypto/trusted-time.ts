import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import { ClockRollbackError, IntegrityError } from '../errors.js';
import type { DeviceKeys } from './device-key.js';
import { readPrivateFile, writePrivateFile } from './private-files.js';
import { wipe } from './secret.js';

/** File name of the trusted-time record inside the keys directory. */
export const TRUSTED_TIME_FILE = 'trusted-time.json';
/** How far the clock may read behind the record before it counts as set back: 5 minutes. */
export const DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60 * 1000;

/** Where a trusted time came from. */
export type TrustedTimeSource = 'envelope' | 'repository' | 'clock' | 'device-keys';

const RecordSchema = z.strictObject({
  format: z.literal('tandem.trusted-time/v1'),
  deviceId: z.string(),
  latest: z.number().int().nonnegative(),
  source: z.enum(['envelope', 'repository', 'clock', 'device-keys']),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
type StoredRecord = z.infer<typeof RecordSchema>;

/**
 * The latest time this device has trusted, kept as a monotonic record: it only moves forward
 * (issued-at times of verified envelopes, signed repository metadata, the device's own clock
 * while it runs). A clock that reads earlier than the record (less a tolerance) was set back,
 * and {@link TrustedTime.check} refuses it, so an expired offline lease cannot be revived by
 * turning the clock back. The record is authenticated with a key derived from the device's
 * private key: an edited record is refused, and a removed one too (make new device keys, which
 * voids every envelope sealed for the old ones).
 *
 * @example
 * ```ts
 * const time = await TrustedTime.open(keysDir, device);
 * const now = await time.now(); // throws ClockRollbackError when the clock was set back
 * ```
 */
export class TrustedTime {
  readonly #file: string;
  readonly #device: DeviceKeys;
  readonly #clock: Clock;
  readonly toleranceMs: number;
  #latest: number;
  #source: TrustedTimeSource;

  private constructor(
    file: string,
    device: DeviceKeys,
    clock: Clock,
    toleranceMs: number,
    latest: number,
    source: TrustedTimeSource,
  ) {
    this.#file = file;
    this.#device = device;
    this.#clock = clock;
    this.toleranceMs = toleranceMs;
    this.#latest = latest;
    this.#source = source;
  }

  /**
   * The record in `keysDir` for `device`. With `create`, a missing record is started at the
   * device keys' creation time (what {@link openEndpointKeys} does right after making the keys);
   * without it, a missing record is refused.
   */
  static async open(
    keysDir: string,
    device: DeviceKeys,
    options: { clock?: Clock; toleranceMs?: number; create?: boolean } = {},
  ): Promise<TrustedTime> {
    const file = join(keysDir, TRUSTED_TIME_FILE);
    const clock = options.clock ?? systemClock;
    const tolerance = options.toleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS;
    const raw = await readPrivateFile(file);
    if (!raw) {
      if (!options.create)
        throw new IntegrityError(
          `The trusted-time record ${file} is missing while this device's keys exist: it was removed, perhaps to revive an expired lease. Offline leases are refused; make new device keys (tandem keys device init --replace) and get new envelopes.`,
          { details: { file } },
        );
      const time = new TrustedTime(file, device, clock, tolerance, Date.parse(device.createdAt), 'device-keys');
      await time.#save();
      return time;
    }
    const stored = await verifyRecord(raw, file, device);
    return new TrustedTime(file, device, clock, tolerance, stored.latest, stored.source);
  }

  /** The latest trusted time, epoch milliseconds. */
  get latest(): number {
    return this.#latest;
  }

  /** Where {@link TrustedTime.latest} came from. */
  get source(): TrustedTimeSource {
    return this.#source;
  }

  /** Throws ClockRollbackError when `at` (default: the clock) is earlier than the record allows. */
  check(at: number = this.#clock.now()): void {
    if (at + this.toleranceMs < this.#latest) {
      throw new ClockRollbackError(
        `The clock reads ${new Date(at).toISOString()}, but this device has already seen ${new Date(this.#latest).toISOString()} (from ${this.#source}): the clock was set back. Set the correct time; keys are not released by a rolled-back clock.`,
        {
          details: {
            clock: new Date(at).toISOString(),
            trusted: new Date(this.#latest).toISOString(),
            source: this.#source,
          },
        },
      );
    }
  }

  /** Moves the record forward to `time` (never back) and saves it. */
  async observe(time: number, source: TrustedTimeSource): Promise<void> {
    if (!Number.isFinite(time) || time <= this.#latest) return;
    this.#latest = Math.floor(time);
    this.#source = source;
    await this.#save();
  }

  /** Checks the clock against the record, records it, and returns it. */
  async now(): Promise<number> {
    const now = this.#clock.now();
    this.check(now);
    await this.observe(now, 'clock');
    return now;
  }

  async #save(): Promise<void> {
    const body = {
      format: 'tandem.trusted-time/v1' as const,
      deviceId: this.#device.deviceId,
      latest: this.#latest,
      source: this.#source,
    };
    const mac = await macOf(this.#device, body);
    await writePrivateFile(this.#file, JSON.stringify({ ...body, mac }, null, 2) + '\n');
  }
}

async function macOf(device: DeviceKeys, body: Omit<StoredRecord, 'mac'>): Promise<string> {
  using key = await device.sealingPrivateKey();
  const macKey = key.use((ikm) => Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), 'tandem trusted-time v1', 32)));
  try {
    return createHmac('sha256', macKey)
      .update(JSON.stringify([body.format, body.deviceId, body.latest, body.source]))
      .digest('hex');
  } finally {
    wipe(macKey);
  }
}

async function verifyRecord(raw: Buffer, file: string, device: DeviceKeys): Promise<StoredRecord> {
  const edited = (): IntegrityError =>
    new IntegrityError(
      `The trusted-time record ${file} was edited or damaged. Offline leases are refused; make new device keys (tandem keys device init --replace) and get new envelopes.`,
      { details: { file } },
    );
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8'));
  } catch {
    throw edited();
  }
  const parsed = RecordSchema.safeParse(data);
  if (!parsed.success || parsed.data.deviceId !== device.deviceId) throw edited();
  const expected = Buffer.from(await macOf(device, parsed.data), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(parsed.data.mac, 'hex'))) throw edited();
  return parsed.data;
}
