// libvirt lifecycle benchmark (issue 3).
//
// On a real QEMU VM (64 MiB, empty qcow2, software emulation): start to running, suspend,
// resume, snapshot create, revert and stop, through Tandem's libvirt adapter and through raw
// `virsh` in the same run, N rounds each (interleaved, alternating who goes first), medians
// and the ratio Tandem / virsh. Both sides drive their own identical VM. Raw virsh is spawned
// from Node with an argument array, as any program would run it. Needs root and libvirtd:
//
//   npx tsc -b && node bench/libvirt-lifecycle.mjs [--rounds 10] [--uri qemu:///system]
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { libvirt } from '@tandem/adapter-libvirt';

const run = promisify(execFile);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROUNDS = Number(arg('rounds', '10'));
const URI = arg('uri', 'qemu:///system');
const OPS = ['start', 'suspend', 'resume', 'snapshot create', 'revert', 'stop'];

const virsh = (...args) => run('virsh', ['-q', '-c', URI, ...args], { env: { ...process.env, LC_ALL: 'C' } });

const dir = await mkdtemp(join(tmpdir(), 'tandem-bench-'));
await chmod(dir, 0o755);
const adapter = libvirt({ uri: URI, virtType: 'qemu' });
const suffix = process.pid.toString(36);
const vmT = `tandem-bench-t-${suffix}`;
const vmV = `tandem-bench-v-${suffix}`;

async function defineVm(name) {
  const disk = join(dir, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
  await adapter.define({
    name,
    memoryMiB: 64,
    cpus: 1,
    disks: [{ path: disk, format: 'qcow2' }],
    network: { mode: 'none' },
    graphics: { kind: 'none' },
    osFamily: 'other',
  });
}

const sides = {
  tandem: {
    vm: vmT,
    start: () => adapter.start(vmT),
    suspend: () => adapter.suspend(vmT),
    resume: () => adapter.resume(vmT),
    'snapshot create': (snap) => adapter.snapshots.create(vmT, { name: snap }),
    revert: (snap) => adapter.snapshots.revert(vmT, snap),
    stop: () => adapter.stop(vmT, { force: true }),
  },
  virsh: {
    vm: vmV,
    start: () => virsh('start', '--domain', vmV),
    suspend: () => virsh('suspend', '--domain', vmV),
    resume: () => virsh('resume', '--domain', vmV),
    'snapshot create': (snap) => virsh('snapshot-create-as', '--domain', vmV, '--name', snap),
    revert: (snap) => virsh('snapshot-revert', '--domain', vmV, '--snapshotname', snap),
    stop: () => virsh('destroy', '--domain', vmV),
  },
};

async function round(side, snap, times) {
  for (const op of OPS) {
    const t0 = performance.now();
    await sides[side][op](snap);
    times?.[side][op].push(performance.now() - t0);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const times = { tandem: {}, virsh: {} };
for (const side of Object.keys(times)) for (const op of OPS) times[side][op] = [];

try {
  const probe = await adapter.probe();
  if (!probe.usable) throw new Error(`libvirt is not usable: ${probe.reason}`);
  await defineVm(vmT);
  await defineVm(vmV);
  // One warm-up round each (first QEMU start, binding load, page cache), not counted.
  await round('tandem', 'warmup');
  await round('virsh', 'warmup');
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 === 0 ? ['tandem', 'virsh'] : ['virsh', 'tandem'];
    for (const side of order) await round(side, `r${i}`, times);
  }

  console.log(
    `libvirt lifecycle: ${ROUNDS} rounds, ${URI}, ${probe.hypervisorVersion}, libvirt ${probe.details?.libvirtDaemon}`,
  );
  console.log('');
  console.log('| operation | Tandem median (ms) | raw virsh median (ms) | ratio Tandem / virsh |');
  console.log('|---|---:|---:|---:|');
  let worst = 0;
  for (const op of OPS) {
    const t = median(times.tandem[op]);
    const v = median(times.virsh[op]);
    worst = Math.max(worst, t / v);
    console.log(`| ${op} | ${t.toFixed(1)} | ${v.toFixed(1)} | ${(t / v).toFixed(2)} |`);
  }
  console.log('');
  console.log(`worst ratio: ${worst.toFixed(2)} (goal: <= 1.10)`);
} finally {
  for (const vm of [vmT, vmV]) {
    await virsh('destroy', '--domain', vm).catch(() => undefined);
    await virsh('undefine', '--domain', vm, '--snapshots-metadata', '--managed-save').catch(() => undefined);
  }
  await adapter.close();
  await rm(dir, { recursive: true, force: true });
}
