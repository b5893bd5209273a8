import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import dbus from 'dbus-next';
import { FAKE_LOGIN1_PY } from './fake-login1.test-helper.js';

/** Where Debian keeps the interpreter that has python3-dbus and python3-gi. */
const PYTHON = '/usr/bin/python3';

/**
 * Null when a test desktop can run here (dbus-daemon, Python with dbus and gi, systemd-inhibit),
 * or the reason it cannot.
 */
export function testDesktopProblem(): string | null {
  if (spawnSync('dbus-daemon', ['--version']).status !== 0) return 'dbus-daemon is not installed (Debian: dbus)';
  if (spawnSync(PYTHON, ['-c', 'import dbus, dbus.mainloop.glib; from gi.repository import GLib']).status !== 0)
    return 'python3-dbus and python3-gi are not installed';
  if (spawnSync('systemd-inhibit', ['--version']).status !== 0)
    return 'systemd-inhibit is not installed (Debian: systemd)';
  return null;
}

/** A notification the stand-in Notifications service received. */
export interface ReceivedNotification {
  appName: string;
  summary: string;
  body: string;
  /** The `urgency` hint: 0 low, 1 normal, 2 critical. */
  urgency: number | undefined;
}

/** An inhibitor the stand-in logind handed out, and whether its holder still holds it. */
export interface StandInInhibitor {
  what: string;
  who: string;
  why: string;
  mode: string;
  uid: number;
  pid: number;
  held: boolean;
}

/** A private D-Bus with stand-in logind, ScreenSaver, Notifications and NetworkManager services. */
export interface TestDesktop {
  /** The bus address; pass it as both the session and the system bus. */
  readonly address: string;
  /** Adds a login1 session (`class` user or greeter) and returns its object path. */
  addSession(id: string, uid: number, name: string, klass?: string): Promise<string>;
  removeSession(id: string): Promise<void>;
  setIdleHint(id: string, idle: boolean): Promise<void>;
  setState(id: string, state: 'online' | 'active' | 'closing'): Promise<void>;
  prepareForSleep(start: boolean): Promise<void>;
  networkStateChanged(state?: number): Promise<void>;
  inhibitors(): Promise<StandInInhibitor[]>;
  screenSaverActive(active: boolean): void;
  readonly notifications: ReceivedNotification[];
  close(): Promise<void>;
}

const { Interface } = dbus.interface;

class ScreenSaver extends Interface {
  active = false;
  constructor() {
    super('org.freedesktop.ScreenSaver');
  }
  GetActive(): boolean {
    return this.active;
  }
  ActiveChanged(active: boolean): boolean {
    return active;
  }
}
(ScreenSaver as unknown as { configureMembers(m: unknown): void }).configureMembers({
  methods: { GetActive: { inSignature: '', outSignature: 'b' } },
  signals: { ActiveChanged: { signature: 'b' } },
});

class Notifications extends Interface {
  readonly received: ReceivedNotification[] = [];
  #next = 1;
  constructor() {
    super('org.freedesktop.Notifications');
  }
  Notify(
    appName: string,
    _replaces: number,
    _icon: string,
    summary: string,
    body: string,
    _actions: string[],
    hints: Record<string, { value: unknown }>,
    _timeout: number,
  ): number {
    const u = hints['urgency']?.value;
    this.received.push({ appName, summary, body, urgency: typeof u === 'number' ? u : undefined });
    return this.#next++;
  }
  GetCapabilities(): string[] {
    return ['body'];
  }
}
(Notifications as unknown as { configureMembers(m: unknown): void }).configureMembers({
  methods: {
    Notify: { inSignature: 'susssasa{sv}i', outSignature: 'u' },
    GetCapabilities: { inSignature: '', outSignature: 'as' },
  },
});

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    lines.once('line', (l) => resolve(l.trim()));
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${err}`)));
  });
}

/**
 * Starts a private `dbus-daemon` and the stand-in services on it. Close it in `afterAll`/
 * `afterEach`: the daemon, the stand-ins and the temporary directory go away.
 *
 * @example
 * ```ts
 * const desktop = await startTestDesktop();
 * await desktop.addSession('c1', process.getuid!(), 'alice');
 * const monitor = new DesktopMonitor({ sessionBusAddress: desktop.address, systemBusAddress: desktop.address, loginSessionId: 'c1' });
 * await monitor.start();
 * await desktop.setIdleHint('c1', true); // monitor emits 'idle'
 * ```
 */
export async function startTestDesktop(): Promise<TestDesktop> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-dbus-'));
  const children: ChildProcess[] = [];
  let bus: dbus.MessageBus | undefined;
  const close = async (): Promise<void> => {
    bus?.disconnect();
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const config = join(dir, 'bus.conf');
    await writeFile(
      config,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
    );
    const daemon = spawn('dbus-daemon', ['--nofork', '--print-address', `--config-file=${config}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(daemon);
    const address = await firstLine(daemon, 'dbus-daemon');
    const script = join(dir, 'fake-login1.py');
    await writeFile(script, FAKE_LOGIN1_PY);
    const fake = spawn(PYTHON, [script, address], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(fake);
    await firstLine(fake, 'the stand-in logind');

    bus = dbus.sessionBus({ busAddress: address });
    const screenSaver = new ScreenSaver();
    const notifications = new Notifications();
    bus.export('/org/freedesktop/ScreenSaver', screenSaver);
    bus.export('/org/freedesktop/Notifications', notifications);
    await bus.requestName('org.freedesktop.ScreenSaver', 0);
    await bus.requestName('org.freedesktop.Notifications', 0);
    const control = (await bus.getProxyObject('org.freedesktop.login1', '/dev/tandem/test')).getInterface(
      'dev.tandem.Test.Login1',
    ) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const call = async (name: string, ...args: unknown[]): Promise<unknown> => control[name]!(...args);
    return {
      address,
      addSession: async (id, uid, name, klass = 'user') => (await call('AddSession', id, uid, name, klass)) as string,
      removeSession: async (id) => void (await call('RemoveSession', id)),
      setIdleHint: async (id, idle) => void (await call('SetIdleHint', id, idle)),
      setState: async (id, state) => void (await call('SetState', id, state)),
      prepareForSleep: async (start) => void (await call('EmitPrepareForSleep', start)),
      networkStateChanged: async (state = 70) => void (await call('EmitNetworkState', state)),
      inhibitors: async () =>
        ((await call('Inhibitors')) as [string, string, string, string, number, number, boolean][]).map(
          ([what, who, why, mode, uid, pid, held]) => ({ what, who, why, mode, uid, pid, held }),
        ),
      screenSaverActive: (active) => {
        screenSaver.active = active;
        screenSaver.ActiveChanged(active);
      },
      notifications: notifications.received,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
