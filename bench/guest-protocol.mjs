// Guest protocol benchmark (issue 12): the built agent as a child process behind a QEMU-like
// relay over unix sockets (the agent finds its port in a fake /sys tree), the host side through
// GuestConnection. Measures agent start to the end of the handshake, and sequential `info`
// round trips. Not a guest boot: see bench/test-guest.mjs for real QEMU.
//
//   npx tsc -b && node bench/guest-protocol.mjs [--rounds 3] [--requests 500]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuestConnection } from '@tandem/core/guest';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg('rounds', 3);
const REQUESTS = arg('requests', 500);
const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'guest-agent', 'dist', 'main.js');

async function round() {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-guest-'));
  mkdirSync(join(dir, 'sys/class/virtio-ports/vport1p1'), { recursive: true });
  writeFileSync(join(dir, 'sys/class/virtio-ports/vport1p1/name'), 'org.tandem.agent.0\n');
  mkdirSync(join(dir, 'dev'));
  let guest;
  let host;
  const gs = createServer((s) => {
    guest = s;
    s.on('data', (d) => host?.write(d));
    s.on('error', () => {});
  });
  const hs = createServer((s) => {
    host = s;
    s.on('data', (d) => guest?.write(d));
    s.on('error', () => {});
    s.on('close', () => guest?.end());
  });
  await new Promise((r) => gs.listen(join(dir, 'dev/vport1p1'), r));
  await new Promise((r) => hs.listen(join(dir, 'host.sock'), r));
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      MAIN,
      '--sys-dir',
      join(dir, 'sys'),
      '--dev-dir',
      join(dir, 'dev'),
      '--state-dir',
      join(dir, 'state'),
      '--no-url-socket',
    ],
    { stdio: 'ignore' },
  );
  const adapter = {
    name: 'relay',
    guestChannel: {
      open: () =>
        new Promise((resolve, reject) => {
          const s = connect(join(dir, 'host.sock'));
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    },
  };
  const conn = new GuestConnection({ adapter, vm: 'bench', backoff: { initialMs: 20, maxMs: 200 } });
  await conn.open({ timeoutMs: 60_000 });
  const t1 = performance.now();
  for (let i = 0; i < REQUESTS; i++) await conn.info();
  const t2 = performance.now();
  await conn.close();
  child.kill();
  gs.close();
  hs.close();
  rmSync(dir, { recursive: true, force: true });
  return { helloMs: t1 - t0, requestMs: (t2 - t1) / REQUESTS };
}

const results = [];
for (let i = 0; i < ROUNDS; i++) results.push(await round());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`rounds: ${ROUNDS}, requests per round: ${REQUESTS}`);
console.log(
  `agent spawn -> handshake done: ${results.map((r) => r.helloMs.toFixed(0)).join(', ')} ms (median ${median(results.map((r) => r.helloMs)).toFixed(0)})`,
);
console.log(
  `info round trip: ${results.map((r) => r.requestMs.toFixed(2)).join(', ')} ms (median ${median(results.map((r) => r.requestMs)).toFixed(2)})`,
);
