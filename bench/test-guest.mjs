// The real Linux test guest (issue 12): how long it takes to build, how big it is, and how long
// from `start` until the guest agent's hello, under software emulation.
//
// Build: the base (scripts/test-guest/build.mjs base) cold, into an empty cache of its own (apt
// downloads included), then again from that cache; the agent layer and the concatenated
// initramfs as the tests build them. Boot: N rounds of one VM (512 MiB, 1 CPU, direct kernel
// boot, a fresh persistent disk each round, so each is a first boot), defined and started through
// Tandem's libvirt adapter, alternating two ways of waiting:
// - `first byte`: a raw connection to the agent channel's unix socket, time to the first byte the
//   agent sends (its hello);
// - `GuestConnection`: `@tandem/core/guest`'s GuestConnection with default options, time until
//   `open()` resolves (the handshake done).
// Needs root, libvirtd and `npx tsc -b`:
//
//   npx tsc -b && node bench/test-guest.mjs [--rounds 3] [--uri qemu:///system] [--no-cold]
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadavg } from 'node:os';
import { libvirt } from '@tandem/adapter-libvirt';
import { GuestConnection } from '@tandem/core/guest';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = join(ROOT, 'scripts/test-guest/build.mjs');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROUNDS = Number(arg('rounds', '3'));
const URI = arg('uri', 'qemu:///system');
const CACHE = process.env.TANDEM_TEST_GUEST_CACHE ?? '/var/cache/tandem-ci/test-guest';
const virsh = (...args) => run('virsh', ['-q', '-c', URI, ...args], { env: { ...process.env, LC_ALL: 'C' } });
const seconds = (ms) => (ms / 1000).toFixed(1);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const timed = async (fn) => {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
};
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);

// Build figures.
if (!process.argv.includes('--no-cold')) {
  const cold = await mkdtemp(join(CACHE, '..', 'bench-cold-'));
  await chmod(cold, 0o755);
  try {
    const first = await timed(() => run(process.execPath, [BUILD, 'base', '--cache', cold]));
    const again = await timed(() => run(process.execPath, [BUILD, 'base', '--cache', cold]));
    console.log(`base build: cold ${seconds(first.ms)} s, cached ${seconds(again.ms)} s`);
  } finally {
    await rm(cold, { recursive: true, force: true });
  }
}
const base = (await run(process.execPath, [BUILD, 'base', '--cache', CACHE])).stdout.trim();
const runs = join(CACHE, 'runs');
await mkdir(runs, { recursive: true });
const dir = await mkdtemp(join(runs, 'bench-'));
await chmod(dir, 0o755);
const initrd = join(dir, 'initrd.gz');
const layer = await timed(() => run(process.execPath, [BUILD, 'initrd', '--guest', base, '--out', initrd]));
const sizes = {
  kernel: (await stat(join(base, 'vmlinuz'))).size,
  base: (await stat(join(base, 'base.cpio.gz'))).size,
  initrd: (await stat(initrd)).size,
};
console.log(
  `sizes: kernel ${mib(sizes.kernel)}, base initramfs ${mib(sizes.base)}, agent layer ${mib(sizes.initrd - sizes.base)}, kernel + initramfs ${mib(sizes.kernel + sizes.initrd)}; agent layer + concatenation ${seconds(layer.ms)} s`,
);

// Boot figures.
const adapter = libvirt({ uri: URI, virtType: 'qemu' });
const vm = `tandem-bench-guest-${process.pid.toString(36)}`;

async function agentSocket() {
  const xml = (await virsh('dumpxml', '--domain', vm)).stdout;
  const path = /<source mode='bind' path='([^']+\/org\.tandem\.agent\.0)'/.exec(xml)?.[1];
  if (!path) throw new Error(`no agent channel socket in the live XML of ${vm}`);
  return path;
}

function firstByte(path) {
  return new Promise((resolvePromise, reject) => {
    const attempt = () => {
      const s = connect(path);
      s.once('data', () => {
        s.destroy();
        resolvePromise();
      });
      s.once('error', () => setTimeout(attempt, 50));
    };
    attempt();
    setTimeout(() => reject(new Error('no byte from the agent within 300 s')), 300_000).unref();
  });
}

const results = { 'first byte': [], GuestConnection: [] };
try {
  for (let round = 0; round < ROUNDS * 2; round++) {
    const way = round % 2 === 0 ? 'first byte' : 'GuestConnection';
    const disk = join(dir, `state-${round}.qcow2`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    await adapter.define({
      name: vm,
      memoryMiB: 512,
      cpus: 1,
      disks: [{ path: disk, format: 'qcow2' }],
      network: { mode: 'none' },
      graphics: { kind: 'none' },
      osFamily: 'linux',
      guestChannel: true,
      boot: { kernel: join(base, 'vmlinuz'), initrd, cmdline: 'console=ttyS0 panic=-1' },
    });
    const t0 = performance.now();
    await adapter.start(vm);
    if (way === 'first byte') {
      await firstByte(await agentSocket());
    } else {
      const conn = new GuestConnection({ adapter, vm });
      await conn.open({ timeoutMs: 300_000 });
      await conn.close();
    }
    const ms = performance.now() - t0;
    results[way].push(ms);
    console.log(`round ${Math.floor(round / 2) + 1}, ${way}: ${seconds(ms)} s (load ${loadavg()[0].toFixed(2)})`);
    await adapter.destroy(vm);
  }
} finally {
  await adapter.destroy(vm).catch(() => undefined);
  await adapter.close();
  await rm(dir, { recursive: true, force: true });
}
for (const [way, xs] of Object.entries(results)) {
  console.log(`start -> ${way}: median ${seconds(median(xs))} s over ${xs.length} (${xs.map(seconds).join(', ')})`);
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
