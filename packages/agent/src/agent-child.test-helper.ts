// The agent as a child process for the crash tests (not shipped): argv stateDir socketPath [uplinkUrl].
import { join } from 'node:path';
import { MockAdapter } from '@tandem/core/testing';
import { runAgent } from './run.js';
import { httpUplink } from './uplink.js';

const [stateDir, socketPath, uplinkUrl] = process.argv.slice(2) as [string, string, string | undefined];
const stateFile = join(stateDir, 'mock', 'hypervisor.json');
await runAgent({
  stateDir,
  socketPath,
  openAdapter: async () => ({ adapter: new MockAdapter({ stateFile }), name: 'mock' }),
  signals: true,
  version: 'test',
  log: (l) => process.stderr.write(l + '\n'),
  ...(uplinkUrl
    ? {
        uplink: httpUplink({ url: uplinkUrl }),
        shipper: { batchSize: 7, initialBackoffMs: 20, maxBackoffMs: 200, sendTimeoutMs: 5000 },
      }
    : {}),
});
process.stdout.write('ready\n');
