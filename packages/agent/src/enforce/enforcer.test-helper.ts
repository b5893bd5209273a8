import { EventEmitter } from 'node:events';
import {
  EventBus,
  parseWorkspace,
  SessionManager,
  VirtualClock,
  type AdapterCapabilities,
  type AnyTandemEvent,
  type LoadedWorkspace,
  type UsageState,
} from '@tandem/core';
import { MockAdapter } from '@tandem/core/testing';
import type { DesktopEventSource, LoginSessionInfo } from '../desktop/monitor.js';
import type { CredentialCheck } from './credentials.js';
import type { HostLocation } from './location.js';

/** A desktop the test drives by hand: emit its events, set its login sessions. */
export class ScriptedDesktop extends EventEmitter implements DesktopEventSource {
  sessions: LoginSessionInfo[] = [];
  loginSessions(): Promise<LoginSessionInfo[]> {
    return Promise.resolve(this.sessions);
  }
  /** Emits PrepareForSleep and resolves once the work handed to `delay` has settled. */
  async sleep(start: boolean): Promise<void> {
    const work: Promise<unknown>[] = [];
    this.emit('prepare-for-sleep', start, (p: Promise<unknown>) => work.push(p));
    await Promise.allSettled(work);
  }
}

/** A credential check against one password (the real one is unixPasswordCheck, tested on its own). */
export function passwordIs(secret: string, user = 'alice'): CredentialCheck {
  return {
    verify: (password) =>
      Promise.resolve(
        password === secret
          ? { ok: true, user, method: 'test-password' }
          : { ok: false, user, method: 'test-password', reason: 'wrong password' },
      ),
  };
}

/** Lets promise chains started by a clock wake-up run, without waiting on real time. */
export async function settle(check?: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check?.()) return;
    await new Promise<void>((r) => setImmediate(r));
    if (!check && i >= 50) return;
  }
  if (check && !check()) throw new Error('the condition never became true');
}

/** A mock hypervisor on a virtual clock, an event bus that records, and a session manager. */
export function enforcerSetup(
  spec: string,
  options: {
    now?: string;
    hostMemoryMiB?: number;
    usageState?: () => UsageState;
    /** Capabilities of the mock to change (`{ liveNetwork: true }`: it switches a running VM's network). */
    capabilities?: Partial<AdapterCapabilities>;
  } = {},
) {
  const clock = new VirtualClock(Date.parse(options.now ?? '2026-11-23T10:00:00Z'));
  const adapter = new MockAdapter({
    clock,
    hostMemoryMiB: options.hostMemoryMiB ?? 8192,
    ...(options.capabilities ? { capabilities: options.capabilities } : {}),
  });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const manager = new SessionManager({
    adapter,
    events,
    clock,
    ...(options.usageState ? { usageState: options.usageState } : {}),
  });
  const workspace = parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  ${spec}
`);
  const loaded: LoadedWorkspace = { workspace, file: '<inline>', baseDir: '/srv/ws' };
  const desktop = new ScriptedDesktop();
  let location: HostLocation = { dnsSuffixes: [] };
  return {
    clock,
    adapter,
    events,
    seen,
    manager,
    loaded,
    desktop,
    setLocation: (l: HostLocation) => (location = l),
    location: () => Promise.resolve(location),
    of: <T extends AnyTandemEvent['type']>(type: T) =>
      seen.filter((e) => e.type === type).map((e) => e.data as Extract<AnyTandemEvent, { type: T }>['data']),
  };
}
