import { spawn, type ChildProcess } from 'node:child_process';

/** What takes and releases logind's sleep delay lock. */
export interface SleepInhibitor {
  /** Takes the lock; resolves once it is held, rejects with the reason it could not be taken. */
  take(): Promise<void>;
  /** Releases the lock (the host may sleep now). Does nothing when it is not held. */
  release(): Promise<void>;
  /** True while the lock is held. */
  readonly held: boolean;
}

/** Options of {@link systemdInhibitor}. */
export interface SystemdInhibitorOptions {
  /** The system bus logind is on (default: `DBUS_SYSTEM_BUS_ADDRESS` or the system bus). */
  systemBusAddress?: string;
  who?: string;
  why?: string;
  /**
   * Tells when the lock is held: resolves true once logind lists an inhibitor of this pid
   * (`ListInhibitors`). Without it the lock counts as held once `systemd-inhibit` has run for a
   * moment without failing.
   */
  isListed?: (pid: number) => Promise<boolean>;
}

/**
 * A sleep delay lock held by systemd's own `systemd-inhibit --mode=delay`: logind's `Inhibit`
 * returns a file descriptor that must stay open, and dbus-next can receive descriptors only through
 * its optional native `usocket` module (which does not build on Node.js 24 here), so the lock is
 * held by `systemd-inhibit`, which keeps the descriptor until its child (`cat` on a pipe from
 * the agent) ends. Releasing closes the pipe.
 *
 * @example
 * ```ts
 * const lock = systemdInhibitor({ why: 'Tandem locks the workspace before the host sleeps' });
 * await lock.take();
 * // ... PrepareForSleep(true): lock the session, then
 * await lock.release();
 * ```
 */
export function systemdInhibitor(options: SystemdInhibitorOptions = {}): SleepInhibitor {
  let child: ChildProcess | undefined;
  const env = { ...process.env };
  if (options.systemBusAddress) env['DBUS_SYSTEM_BUS_ADDRESS'] = options.systemBusAddress;
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
  return {
    get held() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async take() {
      if (this.held) return;
      const proc = spawn(
        'systemd-inhibit',
        [
          '--what=sleep',
          '--mode=delay',
          `--who=${options.who ?? 'Tandem'}`,
          `--why=${options.why ?? 'lock the workspace session before the host sleeps'}`,
          'cat',
        ],
        { stdio: ['pipe', 'ignore', 'pipe'], env },
      );
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<string>((resolve) => {
        proc.once('exit', (code, signal) => resolve(`systemd-inhibit ended (${signal ?? code}): ${stderr.trim()}`));
        proc.once('error', (err) => resolve(`systemd-inhibit could not run: ${err.message}`));
      });
      let failure: string | undefined;
      void exited.then((r) => (failure = r));
      // Wait until logind lists the lock, or systemd-inhibit fails; never longer than 30 s.
      for (let i = 0; i < 300 && failure === undefined; i++) {
        if (proc.pid !== undefined && options.isListed && (await options.isListed(proc.pid).catch(() => false))) break;
        if (!options.isListed && i >= 5) break;
        await wait(100);
      }
      if (failure !== undefined) throw new Error(failure);
      child = proc;
    },
    async release() {
      const proc = child;
      child = undefined;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.stdin?.end();
      const timer = setTimeout(() => proc.kill('SIGTERM'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
