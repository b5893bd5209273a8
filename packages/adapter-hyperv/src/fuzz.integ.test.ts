import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SshRunner } from '@tandem/core';
import { loopbackSshd } from '@tandem/core/testing';
import { hostileString } from '../../core/src/host/test-strings.js';
import { FAKE_PWSH, fakeHyperVHome } from './fake.test-helper.js';
import { fuzzCases, rdpClientRunner, runCase } from './fuzz.test-helper.js';
import { hyperv } from './index.js';

const sshd = await loopbackSshd();
const { gate } = sshd;
const key = sshd.privateKeyPath;
const knownHosts = sshd.knownHostsPath;
const FAKE_RDP = fileURLToPath(new URL('../test/fake/xfreerdp', import.meta.url));

const RUNS = Number(process.env['TANDEM_FUZZ_SSH_RUNS'] ?? 40);

describe.skipIf(!gate.enabled)(
  'hostile names through every Hyper-V command path over SSH (sshd on 127.0.0.1:2222)',
  () => {
    const home = fakeHyperVHome('7');
    const canary = join(home.home, 'CANARY');
    const rdpLog = join(home.home, 'rdp.log');
    const runner = new SshRunner({
      host: '127.0.0.1',
      port: 2222,
      username: sshd.username,
      privateKeyPath: key,
      knownHostsPath: knownHosts,
    });
    const adapter = hyperv({
      runner,
      powershell: FAKE_PWSH,
      env: home.env({ PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin` }),
      rdpClient: { kind: 'freerdp', program: FAKE_RDP },
      clientRunner: rdpClientRunner(rdpLog),
      rdpDir: home.home,
    });
    afterAll(async () => {
      await runner.close();
      home.remove();
    });

    it(`runs ${RUNS} generated cases through a real remote shell; no injected command ever runs`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fuzzCases((min) => hostileString(canary, { minLength: min })),
          async (c) => runCase(adapter, home, rdpLog, c),
        ),
        { numRuns: RUNS },
      );
      expect(existsSync(canary)).toBe(false);
      expect(home.unexpected()).toEqual([]);
      expect(runner.connectionsOpened).toBe(1);
    }, 600_000);
  },
);
