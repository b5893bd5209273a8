import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GuestOperationError } from '@tandem/core/guest';
import { runProgram, type ProgramRunner } from './run.js';
import { applyLinuxNetwork, firstLink, parseInet, resolvConf } from './setup-network-linux.js';
import { linuxSetup } from './setup-linux.js';

// Stand-ins for busybox `ip` and `udhcpc` on PATH: they print busybox's output formats and keep
// the interface's state (address, default route) in files, so a second run sees the first's work.
const LINKS =
  '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000\\\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n' +
  '2: eth0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop qlen 1000\\\\    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff\n';

let dir: string;
let bin: string;
let etc: string;
let run: ProgramRunner;

function fakeIp(links: string): void {
  writeFileSync(
    join(bin, 'ip'),
    `#!/bin/sh
S="${dir}"
echo "ip $*" >> "$S/log"
case "$*" in
  "-o link show") printf '${links}' ;;
  "-o -4 addr show dev eth0") if [ -f "$S/addr" ]; then printf '2: eth0    inet %s scope global eth0\\\\       valid_lft forever preferred_lft forever\\n' "$(cat "$S/addr")"; fi ;;
  "link set dev eth0 up") ;;
  "addr add "*) if [ -f "$S/addr" ]; then echo "ip: RTNETLINK answers: File exists" >&2; exit 2; fi; echo "$3" > "$S/addr" ;;
  "route show default") if [ -f "$S/gw" ]; then echo "default via $(cat "$S/gw") dev eth0"; fi ;;
  "route add default via "*) echo "$5" > "$S/gw" ;;
  "route del default") rm -f "$S/gw" ;;
  *) echo "ip: unknown command $*" >&2; exit 1 ;;
esac
`,
  );
  chmodSync(join(bin, 'ip'), 0o755);
}

function fakeUdhcpc(lease: boolean): void {
  writeFileSync(
    join(bin, 'udhcpc'),
    lease
      ? `#!/bin/sh\necho "udhcpc $*" >> "${dir}/log"\necho "udhcpc: lease of 10.0.2.15 obtained, lease time 86400"\necho 10.0.2.15/24 > "${dir}/addr"\n`
      : `#!/bin/sh\necho "udhcpc $*" >> "${dir}/log"\necho "udhcpc: sending discover" >&2\necho "udhcpc: no lease, failing" >&2\nexit 1\n`,
  );
  chmodSync(join(bin, 'udhcpc'), 0o755);
}

const log = (): string[] =>
  existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').trim().split('\n') : [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-net-'));
  bin = join(dir, 'bin');
  etc = join(dir, 'etc');
  mkdirSync(bin);
  mkdirSync(etc);
  const env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` };
  run = (command, args, options = {}) => runProgram(command, args, { ...options, env });
  fakeIp(LINKS);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('applyLinuxNetwork', () => {
  it('adds a static address and default route, writes resolv.conf, and a second run finds it all done', async () => {
    writeFileSync(join(etc, 'resolv.conf'), 'nameserver 192.0.2.1\n');
    const settings = { address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3'], dnsSuffix: 'corp.example' };
    const first = await applyLinuxNetwork(settings, etc, run);
    expect(first).toBe(
      'eth0: address 10.0.2.15/24 added; default route via 10.0.2.2 added; /etc/resolv.conf written (search corp.example, nameserver 10.0.2.3)',
    );
    expect(log()).toEqual([
      'ip -o link show',
      'ip -o -4 addr show dev eth0',
      'ip link set dev eth0 up',
      'ip addr add 10.0.2.15/24 dev eth0',
      'ip route show default',
      'ip route add default via 10.0.2.2 dev eth0',
    ]);
    expect(readFileSync(join(etc, 'resolv.conf'), 'utf8')).toBe('search corp.example\nnameserver 10.0.2.3\n');
    rmSync(join(dir, 'log'));
    const second = await applyLinuxNetwork(settings, etc, run);
    expect(second).toBe(
      'eth0: address 10.0.2.15/24 already set; default route via 10.0.2.2 already set; /etc/resolv.conf already as asked',
    );
    expect(log().filter((l) => / add /.test(l))).toEqual([]);
  });

  it('replaces a different default route', async () => {
    writeFileSync(join(dir, 'gw'), '10.0.2.1\n');
    const message = await applyLinuxNetwork(
      { interface: 'eth0', address: '10.0.2.15/24', gateway: '10.0.2.2' },
      etc,
      run,
    );
    expect(message).toContain('default route via 10.0.2.2 added');
    expect(log()).toContain('ip route del default');
    expect(readFileSync(join(dir, 'gw'), 'utf8').trim()).toBe('10.0.2.2');
  });

  it('runs udhcpc when the workspace asks for DHCP and the interface has no address, once', async () => {
    fakeUdhcpc(true);
    expect(await applyLinuxNetwork({ dhcp: true }, etc, run)).toBe('eth0: DHCP lease 10.0.2.15/24');
    expect(log()).toContain('udhcpc -i eth0 -n -q -t 5');
    rmSync(join(dir, 'log'));
    expect(await applyLinuxNetwork({ dhcp: true }, etc, run)).toBe(
      'eth0: already has 10.0.2.15/24 (DHCP not run again)',
    );
    expect(log().some((l) => l.startsWith('udhcpc'))).toBe(false);
  });

  it("a failed DHCP is a retryable GuestOperationError with udhcpc's own words", async () => {
    fakeUdhcpc(false);
    const err = await applyLinuxNetwork({ dhcp: true }, etc, run).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestOperationError);
    expect((err as GuestOperationError).message).toContain('udhcpc: no lease, failing');
    expect((err as GuestOperationError).retryable).toBe(true);
  });

  it("an ip failure carries ip's message; a guest with only loopback says so", async () => {
    writeFileSync(join(dir, 'addr'), '10.0.2.99/24\n');
    const err = await applyLinuxNetwork({ address: '10.0.2.15/24' }, etc, run).catch((e: unknown) => e);
    expect((err as Error).message).toContain('RTNETLINK answers: File exists');
    fakeIp(LINKS.split('\n')[0] + '\n');
    const none = await applyLinuxNetwork({ address: '10.0.2.15/24' }, etc, run).catch((e: unknown) => e);
    expect((none as Error).message).toContain('no interface besides loopback');
  });

  it("linuxSetup's network step applies the settings, and ignores them in mode none", async () => {
    const setup = linuxSetup({ proc: join(dir, 'proc'), etc }, run);
    const signal = new AbortController().signal;
    const none = await setup.network(
      { instance: 'i-1', step: 'network', mode: 'none', settings: { address: '10.0.2.15/24' } },
      signal,
    );
    expect(none.message).toBe('network mode none: nothing to configure (spec.firstTimeSetup.network ignored)');
    expect(log()).toEqual([]);
    const nat = await setup.network(
      { instance: 'i-1', step: 'network', mode: 'nat', settings: { address: '10.0.2.15/24' } },
      signal,
    );
    expect(nat).toEqual({ message: 'eth0: address 10.0.2.15/24 added', rebootRequired: false });
  });
});

describe('parsers', () => {
  it("read busybox's ip output and write resolv.conf", () => {
    expect(firstLink('1: lo: <LOOPBACK,UP> mtu 65536\n3: ens3@if2: <BROADCAST> mtu 1500\n')).toBe('ens3');
    expect(
      parseInet(
        '2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\n2: eth0    inet 10.0.3.1/16 scope global eth0',
      ),
    ).toEqual(['10.0.2.15/24', '10.0.3.1/16']);
    expect(resolvConf({ dhcp: true, dns: ['1.1.1.1', '9.9.9.9'] })).toBe('nameserver 1.1.1.1\nnameserver 9.9.9.9\n');
  });
});
