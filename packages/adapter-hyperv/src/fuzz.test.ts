import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { hostileString } from '../../core/src/host/test-strings.js';
import { FAKE_PWSH, fakeHyperVHome } from './fake.test-helper.js';
import { FUZZ_PATHS, fuzzCases, rdpClientRunner, runCase } from './fuzz.test-helper.js';
import { hyperv } from './index.js';

const FAKE_RDP = fileURLToPath(new URL('../test/fake/xfreerdp', import.meta.url));
/**
 * Runs per command path; more with TANDEM_FUZZ_RUNS_PER_PATH. Every path gets its own runs, so
 * each is covered whatever the generator draws, and the default keeps the test a small fraction
 * of its limit on a busy machine (each case starts the fake as a real process, several times).
 */
const RUNS_PER_PATH = Number(process.env['TANDEM_FUZZ_RUNS_PER_PATH'] ?? 10);
const RUNS = RUNS_PER_PATH * FUZZ_PATHS.length;

describe('hostile names through every Hyper-V command path (local)', () => {
  const home = fakeHyperVHome('5.1');
  const canary = join(home.home, 'CANARY');
  const rdpLog = join(home.home, 'rdp.log');
  afterAll(() => home.remove());
  const adapter = hyperv({
    powershell: FAKE_PWSH,
    env: home.env(),
    rdpClient: { kind: 'freerdp', program: FAKE_RDP },
    clientRunner: rdpClientRunner(rdpLog),
    rdpDir: home.home,
  });

  it(`runs ${RUNS} generated cases; every value reaches the fixed scripts as data`, async () => {
    const seen = new Set<string>();
    for (const path of FUZZ_PATHS) {
      await fc.assert(
        fc.asyncProperty(
          fuzzCases((min) => hostileString(canary, { minLength: min }), [path]),
          async (c) => {
            seen.add(c.path);
            await runCase(adapter, home, rdpLog, c);
          },
        ),
        { numRuns: RUNS_PER_PATH },
      );
    }
    expect(existsSync(canary)).toBe(false);
    expect(home.unexpected()).toEqual([]);
    expect([...seen].sort()).toEqual([...FUZZ_PATHS].sort());
  }, 600_000);

  it('rejects names with a NUL byte with InvalidInputError before PowerShell starts', async () => {
    const withNul = fc.tuple(hostileString(canary), hostileString(canary)).map(([a, b]) => `${a}\0${b}`);
    const before = home.calls().length;
    await fc.assert(
      fc.asyncProperty(withNul, fc.constantFrom(...FUZZ_PATHS), async (name, path) => {
        const run = (): Promise<unknown> => {
          switch (path) {
            case 'define':
              return adapter.define({
                name,
                memoryMiB: 64,
                cpus: 1,
                disks: [],
                network: { mode: 'none' },
                graphics: { kind: 'none' },
                osFamily: 'other',
              });
            case 'snapshot-create':
              return adapter.snapshots.create('vm', { name });
            case 'snapshot-revert':
              return adapter.snapshots.revert('vm', name);
            case 'snapshot-delete':
            case 'snapshot-delete-children':
              return adapter.snapshots.delete(name, 'x');
            case 'launch-remoteapp':
              return adapter.seamless.launch('vm', { appId: 'a', command: name, mode: 'seamless' });
            case 'destroy':
              return adapter.destroy(name);
            case 'stop-force':
            case 'stop-graceful':
              return adapter.stop(name);
            default:
              return adapter.state(name);
          }
        };
        expect(TandemError.is(await run().catch((e: unknown) => e), 'TANDEM_INVALID_INPUT')).toBe(true);
      }),
      { numRuns: 2000 },
    );
    expect(home.calls().length).toBe(before);
  });
});
