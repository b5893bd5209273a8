import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SshRunner } from '@tandem/core';
import { loopbackSshd } from '@tandem/core/testing';
import { hostileString } from '../../core/src/host/test-strings.js';
import { FAKE_VBOXMANAGE, fakeVBoxHome } from './fake.test-helper.js';
import { fuzzCases, runCase } from './fuzz.test-helper.js';
import { virtualbox } from './index.js';

const sshd = await loopbackSshd();
const { gate } = sshd;
const key = sshd.privateKeyPath;
const knownHosts = sshd.knownHostsPath;

const RUNS = Number(process.env['TANDEM_FUZZ_SSH_RUNS'] ?? 30);

describe.skipIf(!gate.enabled)(
  'hostile names through every VirtualBox command path over SSH (sshd on 127.0.0.1:2222)',
  () => {
    const home = fakeVBoxHome('7.0');
    const canary = join(home.home, 'CANARY');
    const runner = new SshRunner({
      host: '127.0.0.1',
      port: 2222,
      username: sshd.username,
      privateKeyPath: key,
      knownHostsPath: knownHosts,
    });
    // The remote shell finds this Node first, as the fake's #!/usr/bin/env node needs.
    const env = home.env({ PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin` });
    const adapter = virtualbox({ runner, vboxManage: FAKE_VBOXMANAGE, env, pollIntervalMs: 5 });
    afterAll(async () => {
      await runner.close();
      home.remove();
    });

    it(`runs ${RUNS} generated cases through a real remote shell; no injected command ever runs`, async () => {
      const seen = new Set<string>();
      await fc.assert(
        fc.asyncProperty(
          fuzzCases((min) => hostileString(canary, { minLength: min })),
          async (c) => {
            seen.add(c.path);
            await runCase(adapter, home, c);
          },
        ),
        { numRuns: RUNS },
      );
      // Every hostile string carries $(touch CANARY), `touch CANARY`, ; touch CANARY, ... variants.
      expect(existsSync(canary)).toBe(false);
      expect(home.unexpected()).toEqual([]);
      expect(runner.connectionsOpened).toBe(1);
      if (RUNS >= 30) expect(seen.size).toBeGreaterThanOrEqual(8);
    }, 600_000);
  },
);
