import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { InvalidInputError, InvalidStateError, NotFoundError, TandemError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import type { EventContext } from '../events/bus.js';
import type { Workspace } from '../workspace/schema.js';
import { renderComputerName, type ComputerNameVariables } from './computer-name.js';
import type { GuestConnection, GuestEventPublisher } from './connection.js';
import { AgentUnreachableError, GuestOperationError } from './errors.js';
import type { SetupStepName, SetupStepParams } from './protocol.js';

/** A domain-join credential, resolved at run time and held in memory only. */
export interface SetupCredential {
  /** The joining user; absent for a one-time password of a pre-staged computer account. */
  readonly user?: string;
  readonly secret: string;
}

/** Resolves a workspace's `credentialRef` when setup runs. */
export interface CredentialResolver {
  resolve(ref: string): Promise<SetupCredential>;
}

/**
 * The credential references Tandem resolves itself: `env:NAME` (the secret in the environment
 * variable NAME, the user in NAME_USER when set) and `file:/path` (a file only its owner can read:
 * a JSON object `{ "user", "secret" }` or one line holding the secret). The workspace file names
 * the reference, never the secret.
 *
 * @example
 * ```ts
 * const credentials = localCredentials();
 * await credentials.resolve('env:TANDEM_JOIN_OTP'); // { secret: '...' }
 * ```
 */
export function localCredentials(env: NodeJS.ProcessEnv = process.env): CredentialResolver {
  return {
    resolve: async (ref) => {
      if (ref.startsWith('env:')) {
        const name = ref.slice(4);
        const secret = env[name];
        if (!secret) throw new NotFoundError(`The credential ${ref} is not set: export ${name} before running setup.`);
        const user = env[`${name}_USER`];
        return user ? { user, secret } : { secret };
      }
      if (ref.startsWith('file:')) {
        const path = ref.slice(5);
        let mode: number;
        try {
          mode = statSync(path).mode;
        } catch (err) {
          throw new NotFoundError(`The credential file ${path} (${ref}) cannot be read.`, { cause: err });
        }
        if ((mode & 0o077) !== 0) {
          throw new InvalidInputError(
            `The credential file ${path} can be read by other users; chmod 600 it before running setup.`,
            { details: { path, mode: (mode & 0o777).toString(8) } },
          );
        }
        const text = readFileSync(path, 'utf8').trim();
        if (text.startsWith('{')) {
          const parsed = JSON.parse(text) as { user?: unknown; secret?: unknown };
          if (typeof parsed.secret !== 'string' || parsed.secret === '') {
            throw new InvalidInputError(`The credential file ${path} has no "secret".`, { details: { path } });
          }
          return typeof parsed.user === 'string'
            ? { user: parsed.user, secret: parsed.secret }
            : { secret: parsed.secret };
        }
        if (text === '') throw new InvalidInputError(`The credential file ${path} is empty.`, { details: { path } });
        return { secret: text.split('\n')[0]! };
      }
      throw new InvalidInputError(
        `Unknown credential reference "${ref}": use env:NAME or file:/path, or pass a resolver of your own.`,
        { details: { ref } },
      );
    },
  };
}

/** The host's record of one VM instance's first-time setup. Never holds a secret. */
export interface SetupRecord {
  readonly vm: string;
  /** The VM instance the setup belongs to; the guest records it too. */
  readonly instance: string;
  readonly workspace?: string;
  /** The computer name, rendered once so a resumed setup uses the same one. */
  computerName?: string;
  steps: Partial<Record<SetupStepName, { status: 'done' | 'failed'; at: string; message: string; code?: string }>>;
  rebootRequired: boolean;
  completedAt?: string;
}

/**
 * Setup records in a directory, one JSON file per VM, written atomically (a temporary file
 * renamed over the old one), so a crash never leaves half a record.
 */
export class SetupRecordStore {
  constructor(readonly dir: string) {}

  #file(vm: string): string {
    return join(this.dir, `${encodeURIComponent(vm)}.json`);
  }

  load(vm: string): SetupRecord | undefined {
    let text: string;
    try {
      text = readFileSync(this.#file(vm), 'utf8');
    } catch {
      return undefined;
    }
    return JSON.parse(text) as SetupRecord;
  }

  save(record: SetupRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.#file(record.vm);
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  }
}

/** Options of {@link runFirstTimeSetup}. */
export interface FirstTimeSetupOptions {
  readonly connection: GuestConnection;
  /** The workspace whose `spec.firstTimeSetup` drives the setup. */
  readonly workspace: Workspace;
  readonly records: SetupRecordStore;
  /** Resolves `joinDomain.credentialRef`; default {@link localCredentials}. */
  readonly credentials?: CredentialResolver;
  /** Values for the computer-name template. */
  readonly variables?: ComputerNameVariables;
  /** The VM instance (the hypervisor's UUID when known); default a new random id, kept in the record. */
  readonly instance?: string;
  /** Continue after a failed step (without it, a failed setup is reported, not rerun). */
  readonly retry?: boolean;
  readonly bus?: GuestEventPublisher;
  /** The workspace and session the events belong to. */
  readonly context?: EventContext;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /**
   * Restarts the VM (a session's stop and start, or the adapter's): given, a setup whose steps
   * say `rebootRequired` (a Windows rename or join) is followed by a restart, and the setup ends
   * once the agent said hello again. Published as the setup step `restart` (started, done).
   * Without it the result says `rebootRequired` and the caller restarts.
   */
  readonly restart?: () => Promise<void>;
  /** How long the agent may take to say hello after the restart (default 10 minutes). */
  readonly restartTimeoutMs?: number;
}

/** What {@link runFirstTimeSetup} did. */
export interface FirstTimeSetupResult {
  readonly status: 'done' | 'already-done' | 'nothing-to-do';
  readonly record: SetupRecord;
  readonly rebootRequired: boolean;
}

/**
 * Runs first-time setup once per VM instance: computer name, network, domain join, each step an
 * event and recorded on the host (the record store) and in the guest (the agent's state dir).
 * A step the guest already did is skipped; a guest that reboots midway is waited for and the
 * setup resumes; a failed step throws GuestOperationError with the guest's message and is rerun
 * with `retry`. The join credential is resolved here, sent to the agent in the step's params
 * and nowhere else: not in the record, not in events.
 *
 * @example
 * ```ts
 * const result = await runFirstTimeSetup({ connection: conn, workspace, records: new SetupRecordStore(dir) });
 * console.log(result.status, result.record.computerName);
 * ```
 */
export async function runFirstTimeSetup(options: FirstTimeSetupOptions): Promise<FirstTimeSetupResult> {
  const { connection, workspace, records } = options;
  const vm = connection.vm;
  const clock = options.clock ?? systemClock;
  const fts = workspace.spec.firstTimeSetup;
  const osFamily = workspace.spec.guestOs;
  const publish: GuestEventPublisher['publish'] = (type, data) =>
    options.bus?.publish(type, data, options.context ?? {});
  const existing = records.load(vm);
  const record: SetupRecord = existing ?? {
    vm,
    instance: options.instance ?? randomUUID(),
    workspace: workspace.metadata.name,
    steps: {},
    rebootRequired: false,
  };
  if (record.completedAt) {
    publish('guest.setup-completed', {
      vm,
      instance: record.instance,
      ...(record.computerName ? { computerName: record.computerName } : {}),
      rebootRequired: record.rebootRequired,
    });
    return { status: 'already-done', record, rebootRequired: record.rebootRequired };
  }
  const failed = Object.entries(record.steps).find(([, s]) => s?.status === 'failed');
  if (failed && !options.retry) {
    throw new InvalidStateError(
      `First-time setup of VM "${vm}" failed at ${failed[0]}: ${failed[1]?.message}. Fix the cause and run it again with --retry.`,
      'failed',
      { details: { vm, step: failed[0], guestMessage: failed[1]?.message } },
    );
  }
  if (!fts) {
    record.completedAt = new Date(clock.now()).toISOString();
    records.save(record);
    return { status: 'nothing-to-do', record, rebootRequired: false };
  }
  if (fts.computerName && !record.computerName) {
    record.computerName = renderComputerName(fts.computerName, options.variables ?? {}, osFamily);
  }
  records.save(record);

  const plan: Array<{ step: SetupStepName; params: () => Promise<SetupStepParams> }> = [];
  const instance = record.instance;
  if (record.computerName) {
    const computerName = record.computerName;
    plan.push({ step: 'computer-name', params: async () => ({ instance, step: 'computer-name', computerName }) });
  }
  plan.push({
    step: 'network',
    params: async () => ({
      instance,
      step: 'network',
      mode: workspace.spec.network.mode,
      ...(fts.network ? { settings: fts.network } : {}),
    }),
  });
  if (fts.joinDomain) {
    const join = fts.joinDomain;
    const computerName = record.computerName;
    if (!computerName) {
      throw new InvalidInputError('Joining a domain needs spec.firstTimeSetup.computerName.', {
        details: { path: 'spec.firstTimeSetup.computerName' },
      });
    }
    plan.push({
      step: 'domain-join',
      params: async () => {
        const cred = await (options.credentials ?? localCredentials()).resolve(join.credentialRef);
        return {
          instance,
          step: 'domain-join',
          domain: join.domain,
          ...(join.ou ? { ou: join.ou } : {}),
          computerName,
          ...(cred.user ? { user: cred.user } : {}),
          secret: cred.secret,
        };
      },
    });
  }

  const deadline = clock.now() + parseDuration(fts.timeout);
  for (const { step, params } of plan) {
    if (record.steps[step]?.status === 'done') {
      publish('guest.setup-step', { vm, instance, step, status: 'skipped', message: 'done by an earlier run' });
      continue;
    }
    publish('guest.setup-step', { vm, instance, step, status: 'started' });
    try {
      const p = await params();
      for (;;) {
        try {
          const remaining = Math.max(1, deadline - clock.now());
          const result = await connection.setupStep(p, {
            timeoutMs: remaining,
            ...(options.signal ? { signal: options.signal } : {}),
          });
          record.steps[step] = { status: 'done', at: new Date(clock.now()).toISOString(), message: result.message };
          record.rebootRequired ||= result.rebootRequired;
          records.save(record);
          publish('guest.setup-step', {
            vm,
            instance,
            step,
            status: result.status === 'already-done' ? 'skipped' : 'done',
            message: result.message,
          });
          break;
        } catch (err) {
          // The guest rebooted or the agent restarted midway: wait for it and ask again; the agent
          // answers `already-done` for a step it finished before going away.
          if (TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE') && err.retryable && clock.now() < deadline) {
            if (options.signal?.aborted) throw err;
            await clock.sleep(500, options.signal).catch(() => undefined);
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      const guestMessage =
        err instanceof GuestOperationError ? err.guestMessage : err instanceof Error ? err.message : String(err);
      const code = TandemError.is(err) ? err.code : 'TANDEM_GUEST_FAILED';
      record.steps[step] = { status: 'failed', at: new Date(clock.now()).toISOString(), message: guestMessage, code };
      records.save(record);
      publish('guest.setup-step', {
        vm,
        instance,
        step,
        status: 'failed',
        message: guestMessage,
        code,
        retryable: TandemError.is(err) ? err.retryable || err instanceof GuestOperationError : false,
      });
      if (err instanceof GuestOperationError) {
        throw new GuestOperationError(
          `First-time setup of VM "${vm}" failed at ${step}: ${guestMessage}. Fix the cause and run it again with --retry.`,
          guestMessage,
          { retryable: true, cause: err, details: { vm, step, ...err.details } },
        );
      }
      throw err;
    }
  }
  if (record.rebootRequired && options.restart) {
    publish('guest.setup-step', {
      vm,
      instance,
      step: 'restart',
      status: 'started',
      message: 'the guest asked for a restart',
    });
    await options.restart();
    await waitForAgent(connection, clock, options.restartTimeoutMs ?? 10 * 60_000, options.signal);
    record.rebootRequired = false;
    records.save(record);
    publish('guest.setup-step', {
      vm,
      instance,
      step: 'restart',
      status: 'done',
      message: 'the VM restarted and its agent said hello again',
    });
  }
  record.completedAt = new Date(clock.now()).toISOString();
  records.save(record);
  publish('guest.setup-completed', {
    vm,
    instance,
    ...(record.computerName ? { computerName: record.computerName } : {}),
    rebootRequired: record.rebootRequired,
  });
  return { status: 'done', record, rebootRequired: record.rebootRequired };
}

/**
 * Waits until the agent answers again after a restart: the connection reconnects by itself, so
 * this asks `ping`-like `setup.status` until it answers (a restart may be slow to take the old
 * agent away, so an answer from it is not taken: the connection's hello count must have grown).
 */
async function waitForAgent(
  connection: GuestConnection,
  clock: Clock,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const before = connection.hellos;
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (connection.hellos > before) {
      try {
        await connection.setupStatus({ timeoutMs: Math.max(1, Math.min(30_000, deadline - clock.now())) });
        return;
      } catch (err) {
        if (!TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE')) throw err;
      }
    }
    if (clock.now() >= deadline) {
      throw new AgentUnreachableError(
        `The agent in VM "${connection.vm}" did not say hello within ${Math.round(timeoutMs / 1000)} s of the restart first-time setup asked for.`,
        { details: { vm: connection.vm } },
      );
    }
    await clock.sleep(100, signal);
  }
}
