import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { hostileString } from '../../core/src/host/test-strings.js';
import { FAKE_VBOXMANAGE, fakeVBoxHome } from './fake.test-helper.js';
import { FUZZ_PATHS, fuzzCases, runCase } from './fuzz.test-helper.js';
import { virtualbox } from './index.js';

/**
 * Runs per command path; more with TANDEM_FUZZ_RUNS_PER_PATH. Every path gets its own runs, so
 * each is covered whatever the generator draws, and the default keeps the test a small fraction
 * of its limit on a busy machine (each case starts the fake as a real process, several times).
 */
const RUNS_PER_PATH = Number(process.env['TANDEM_FUZZ_RUNS_PER_PATH'] ?? 5);
const RUNS = RUNS_PER_PATH * FUZZ_PATHS.length;

describe('hostile names through every VirtualBox command path (local)', () => {
  const home = fakeVBoxHome('7.1');
  const canary = join(home.home, 'CANARY');
  afterAll(() => home.remove());
  const adapter = virtualbox({ vboxManage: FAKE_VBOXMANAGE, env: home.env(), pollIntervalMs: 5 });
  const seen = new Set<string>();

  it(`runs ${RUNS} generated cases; every value arrives as one exact argument and nothing else runs`, async () => {
    for (const path of FUZZ_PATHS) {
      await fc.assert(
        fc.asyncProperty(
          fuzzCases((min) => hostileString(canary, { minLength: min }), [path]),
          async (c) => {
            seen.add(c.path);
            await runCase(adapter, home, c);
          },
        ),
        { numRuns: RUNS_PER_PATH },
      );
    }
    expect(existsSync(canary)).toBe(false);
    expect(home.unexpected()).toEqual([]);
    expect([...seen].sort()).toEqual([...FUZZ_PATHS].sort());
  }, 600_000);

  it('rejects names with a NUL byte with InvalidInputError before any process starts', async () => {
    const before = home.calls().length;
    const withNul = fc.tuple(hostileString(canary), hostileString(canary)).map(([a, b]) => `${a}\0${b}`);
    await fc.assert(
      fc.asyncProperty(withNul, fc.constantFrom(...FUZZ_PATHS), async (name, path) => {
        const attempt = async (): Promise<unknown> => {
          switch (path) {
            case 'define':
              return adapter.define({
                name,
                memoryMiB: 1,
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
            case 'launch':
              return adapter.seamless.launch('vm', {
                appId: 'a',
                command: name,
                mode: 'seamless',
                credentials: { username: 'u' },
              });
            case 'encrypt':
              return adapter.diskEncryption.encrypt(
                { path: `/tmp/${name}.vdi`, format: 'vdi', encryption: { keyId: 'k' } },
                new Uint8Array([1]),
              );
            case 'start-with-keys':
              return adapter.start('vm', { diskKeys: new Map([[name, new Uint8Array([1])]]) }).catch((e: unknown) => {
                // The key id is checked only once the VM exists; a missing VM is NotFound, never a process with a NUL.
                if (TandemError.is(e, 'TANDEM_NOT_FOUND')) throw Object.assign(new Error('skip'), { skip: true });
                throw e;
              });
            case 'list':
              return adapter.state(name);
            case 'set-network':
              return adapter.setNetwork('vm', { mode: 'bridged', bridge: name });
            default:
              return adapter.state(name);
          }
        };
        const err = await attempt().catch((e: unknown) => e);
        if (err instanceof Error && (err as { skip?: boolean }).skip) return;
        expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
      }),
      { numRuns: 2000 },
    );
    // Only start-with-keys may have looked the VM up; no call carried a NUL.
    expect(
      home
        .calls()
        .slice(before)
        .every((argv) => argv.every((a) => !a.includes('\0'))),
    ).toBe(true);
  });
});
