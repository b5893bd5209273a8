// Another host user is refused by the peer credential check itself: the socket is made
// reachable by the unprivileged tandem-ci account (0777 in a 0711 directory), so only the check
// of the connecting process's uid stands between it and the agent.
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { integrationGate } from '@tandem/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from './client.js';
import { mockOpener, tempDir } from './fixtures.test-helper.js';
import { runAgent, type RunningAgent } from './run.js';

const run = promisify(execFile);
const OTHER = 'tandem-ci';

const gate = await integrationGate(
  'peer credentials (another user)',
  async () => {
    if (process.getuid?.() !== 0) return 'the test must run as root to act as another user';
    const id = await run('id', ['-u', OTHER]).catch(() => null);
    if (!id) return `there is no ${OTHER} account`;
    await run('ss', ['-V']).catch(() => {
      throw new Error('ss (iproute2) is not installed');
    });
    return null;
  },
  `run as root with the ${OTHER} account present (.ci/sshd.sh creates it) and iproute2 installed`,
);

/** A raw client run as another user: sends hello, prints the first line the agent answers. */
const CLIENT = `
const s = require('node:net').createConnection(process.argv[1]);
let buf = '';
s.on('connect', () => s.write(JSON.stringify({ id: 1, method: 'hello', params: { apiVersion: '1.0' } }) + '\\n'));
s.on('data', (c) => { buf += c; if (buf.includes('\\n')) { process.stdout.write(buf.split('\\n')[0]); process.exit(0); } });
s.on('close', () => { process.stdout.write(buf || 'closed'); process.exit(0); });
s.on('error', (e) => { process.stdout.write('error ' + e.code); process.exit(0); });
`;

describe.skipIf(!gate.enabled)('peer credentials', () => {
  let t: ReturnType<typeof tempDir>;
  let running: RunningAgent;
  beforeAll(async () => {
    t = tempDir();
    chmodSync(t.dir, 0o711);
    running = await runAgent({
      stateDir: join(t.dir, 'state'),
      socketPath: join(t.dir, 'agent.sock'),
      socketMode: 0o777,
      openAdapter: mockOpener(join(t.dir, 'state', 'mock.json')),
    });
  });
  afterAll(async () => {
    await running?.stop();
    t?.remove();
  });

  it(`refuses a process of ${OTHER}, though the socket lets it connect`, async () => {
    const { stdout } = await run('runuser', [
      '-u',
      OTHER,
      '--',
      process.execPath,
      '-e',
      CLIENT,
      running.server.socketPath,
    ]);
    const reply = JSON.parse(stdout) as { id: null; error: { code: string; details: { peerUid: number } } };
    const uid = Number((await run('id', ['-u', OTHER])).stdout.trim());
    expect(reply).toMatchObject({
      id: null,
      error: { code: 'TANDEM_AGENT_PEER_REFUSED', details: { peerUid: uid, allowUid: 0 } },
    });
  });

  it('serves its own user on the same socket', async () => {
    const c = await AgentClient.connect(running.server.socketPath);
    expect(c.hello?.uid).toBe(0);
    c.close();
  });
});
