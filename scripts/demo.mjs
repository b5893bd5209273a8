// `npm run demo`: the examples, one after the other, on the mock adapter and loopback only.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const parts = [
  ['Session on the mock adapter: start, snapshot, suspend, resume, revert, stop', 'examples/quickstart/dist/main.js'],
  ['Image delivery: pack v1, pull it, pack v2, pull only the delta', 'examples/delivery/dist/main.js'],
  ['Policy: layered web redirection, data transfer, usage and provisioning, explained', 'examples/policy/dist/main.js'],
  [
    'Encryption: pack encrypted, pull with an envelope, start, refused after the lease expires (virtual clock)',
    'examples/encryption/dist/main.js',
  ],
  [
    "Real guest: the test guest booted by QEMU (libvirt), the agent's hello, info and first-time setup",
    'examples/guest/dist/main.js',
  ],
  [
    "Publishing: the quickstart's app as a launcher, and the transport command with its policy flags",
    'examples/publishing/dist/main.js',
  ],
  [
    'Management server: a device enrolls, a user signs in, the quickstart workspace assigned to a group, its key released, a check-in, the events in a report',
    'examples/server/dist/main.js',
  ],
  [
    'Host agent: the mock adapter on a virtual clock through the socket API: an idle lock, a lock on sleep, a watchdog restart, an expired lease',
    'examples/agent/dist/main.js',
  ],
];
for (const [title, script] of parts) {
  console.log(`\n=== ${title}\n`);
  const r = spawnSync(process.execPath, [join(root, script)], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
