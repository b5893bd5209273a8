// Publishing against the real Linux test guest (scripts/test-guest) booted by real QEMU: the apps
// its agent discovers become host launchers that pass desktop-file-validate, a URL the host opens
// while the policy says guest reaches the agent's open-url, and a URL the guest forwards while
// the policy says host is opened on the host (and one the policy keeps in the guest is not).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, parseWorkspace, TandemError, type AnyTandemEvent } from '@tandem/core';
import { GuestConnection } from '@tandem/core/guest';
import { PolicyEngine } from '@tandem/core/policy';
import { discoveredApps, FreedesktopLaunchers, guestUrlOpener, openHostUrl } from '@tandem/core/publishing';
import { LibvirtAdapter } from './adapter.js';
import { itName, purge, QEMU_URI, qemuGate, until } from './testing/fixtures.test.helpers.js';
import {
  addControlPort,
  startUntilHello,
  guestShell,
  prepareTestGuest,
  TEST_APPS,
  testGuestGate,
  testGuestSpec,
  type TestGuestFiles,
} from './testing/test-guest.test.helpers.js';

const run = promisify(execFile);
const LONG = 600_000;
const AGENT_MAIN = '/opt/tandem/node_modules/@tandem/guest-agent/dist/main.js';

const gate = await qemuGate();
const guestGate = gate.enabled ? await testGuestGate() : gate;

const WORKSPACE = parseWorkspace(`apiVersion: tandem/v1
kind: Workspace
metadata: { name: test-guest, version: 1.0.0 }
spec:
  image: { source: ./state.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  webRedirection:
    defaultTarget: guest
    guestToHost: true
    rules:
      - { match: { domainSuffix: example.com }, target: host }
`);

describe.skipIf(!guestGate.enabled)('publishing with the real test guest on qemu:///system', () => {
  const adapter = new LibvirtAdapter({ uri: QEMU_URI, virtType: 'qemu' });
  const vm = itName('publish');
  const policy = new PolicyEngine({ workspace: WORKSPACE }).forSubject({});
  const events = new EventBus();
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const openedOnHost: string[] = [];
  let files: TestGuestFiles;
  let conn: GuestConnection;
  let xdg: string;

  beforeAll(async () => {
    files = await prepareTestGuest(vm);
    xdg = await mkdtemp(join(tmpdir(), 'tandem-guest-launchers-'));
    await adapter.define(testGuestSpec(vm, files, { network: { mode: 'none' } }));
    await addControlPort(vm, files.dir);
    conn = new GuestConnection({
      adapter,
      vm,
      bus: events,
      policy,
      onUrlToHost: guestUrlOpener(async (u) => void openedOnHost.push(u)),
      helloTimeoutMs: 30_000,
      requestTimeoutMs: 60_000,
    });
    await startUntilHello(adapter, vm, conn, files.dir);
  }, LONG);

  afterAll(async () => {
    await conn?.close();
    await adapter.close();
    await purge(vm);
    await files?.remove();
    if (xdg) await rm(xdg, { recursive: true, force: true });
  }, LONG);

  it(
    'discovered apps become launchers that pass desktop-file-validate',
    async () => {
      const found = discoveredApps(await conn.apps());
      expect(found.map((f) => f.app.id)).toEqual(
        expect.arrayContaining(TEST_APPS.shown.map((a) => expect.stringContaining(a))),
      );
      const launchers = new FreedesktopLaunchers({ dataHome: join(xdg, 'data'), configHome: join(xdg, 'config') });
      const r = launchers.install({ workspace: 'test-guest', apps: found.map((f) => f.launcher) });
      const entries = r.written.filter((f) => f.endsWith('.desktop'));
      expect(entries.length).toBe(found.length);
      let validator = true;
      await run('desktop-file-validate', ['--help']).catch(() => (validator = false));
      if (!validator) {
        if (process.env['TANDEM_IT'] === 'required') throw new Error('desktop-file-validate is not installed');
        return;
      }
      for (const f of entries) {
        const out = await run('desktop-file-validate', [f]).catch((e: { stdout?: string }) => ({
          stdout: `FAILED ${e.stdout ?? ''}`,
        }));
        expect(
          out.stdout.split('\n').filter((l) => l.trim() && !/: hint: /.test(l)),
          f,
        ).toEqual([]);
      }
    },
    LONG,
  );

  it(
    'a URL opened on the host while the policy says guest reaches the guest agent',
    async () => {
      const url = 'http://intranet.corp.test/app';
      let reached = '';
      const result = await openHostUrl(
        url,
        policy,
        {
          openOnHost: async () => {
            throw new Error('must not open on the host');
          },
          openInGuest: async (u) => {
            try {
              await conn.openUrl(u);
              reached = 'opened';
            } catch (err) {
              // The test guest has no browser: the agent's own refusal proves the request reached it.
              if (!(TandemError.is(err) && err.code === 'TANDEM_GUEST_FAILED')) throw err;
              reached = (err as { guestMessage?: string }).guestMessage ?? 'agent refused';
            }
          },
        },
        { events },
      );
      expect(result.openedIn).toBe('guest');
      expect(reached).not.toBe('');
      const d = seen.find((e) => e.type === 'policy.decision' && e.data.subject === url);
      expect(d?.type === 'policy.decision' ? d.data.outcome : '').toBe('guest');
    },
    LONG,
  );

  it(
    'a URL the guest forwards opens on the host only when the policy says host',
    async () => {
      const toHost = 'https://www.example.com/from-guest';
      const staysInGuest = 'https://intranet.corp.test/stays';
      await guestShell(vm, `node ${AGENT_MAIN} forward-url ${toHost}`);
      await guestShell(vm, `node ${AGENT_MAIN} forward-url ${staysInGuest}`);
      const urlEvents = () =>
        seen.flatMap((e) => (e.type === 'guest.url-to-host' ? [{ url: e.data.url, target: e.data.target }] : []));
      await until('both url-to-host decisions', () => urlEvents().length >= 2, LONG);
      expect(urlEvents()).toEqual(
        expect.arrayContaining([
          { url: toHost, target: 'host' },
          { url: staysInGuest, target: 'guest' },
        ]),
      );
      expect(openedOnHost).toEqual([toHost]);
    },
    LONG,
  );
});
