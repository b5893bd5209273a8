import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// module.registerHooks records what a process loads; Node.js 22.15 and later have it.
const hasResolveHooks = 'registerHooks' in nodeModule;

// Each entry is imported from the built package in a process of its own, and every module it
// loads is recorded through a resolve hook: what a fresh integrator's process would load.
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

const PROBE = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
const entry = process.argv[1];
const mod = await import(entry);
process.stdout.write(JSON.stringify({ loaded, exports: Object.keys(mod) }));
`;

async function load(entry: string): Promise<{ loaded: string[]; exports: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROBE, entry], {
    cwd: packageDir,
    timeout: 120_000,
  });
  return JSON.parse(stdout) as { loaded: string[]; exports: string[] };
}

const tooling = (urls: string[]): string[] =>
  urls.filter((u) => /\/node_modules\/(ssh2|execa|cpu-features)\//.test(u) || u.endsWith('.node'));

describe.skipIf(!existsSync(join(packageDir, 'dist', 'index.js')) || !hasResolveHooks)(
  'package entries (built by tsc -b)',
  () => {
    it.each([
      '@tandem/core',
      '@tandem/core/policy',
      '@tandem/core/workspace',
      '@tandem/core/events',
      '@tandem/core/session',
      '@tandem/core/mock',
      '@tandem/core/host',
      '@tandem/core/publishing',
      '@tandem/core/guest',
    ])('%s loads no SSH or process tooling', async (entry) => {
      const { loaded, exports } = await load(entry);
      expect(exports.length).toBeGreaterThan(0);
      expect(tooling(loaded)).toEqual([]);
    });

    it('the policy entry loads neither delivery nor sessions nor the host runners', async () => {
      const { loaded, exports } = await load('@tandem/core/policy');
      expect(exports).toContain('PolicyEngine');
      expect(loaded.filter((u) => /\/dist\/(delivery|session|host|testing)\//.test(u))).toEqual([]);
    });

    it('the guest entry loads zod and its own modules only: the guest agent runs it with nothing else', async () => {
      const { loaded, exports } = await load('@tandem/core/guest');
      expect(exports).toEqual(expect.arrayContaining(['GuestConnection', 'AgentEndpoint', 'FrameDecoder']));
      const packages = new Set(
        loaded
          .filter((u) => u.includes('/node_modules/'))
          .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]),
      );
      expect([...packages].filter((p) => p !== 'zod' && p !== '@tandem/core')).toEqual([]);
      const own = loaded
        .filter((u) => u.startsWith('file:') && u.includes('/dist/'))
        .map((u) => u.replace(/^.*\/dist\//, ''));
      expect(own.filter((f) => !/^(guest\/|errors\.js|clock\.js|util\/duration\.js)/.test(f))).toEqual([]);
    });

    it('the mock entry holds the mock adapter without the conformance suite or the test SSH server', async () => {
      const { loaded, exports } = await load('@tandem/core/mock');
      expect(exports).toContain('MockAdapter');
      expect(loaded.filter((u) => /conformance|loopback-sshd|\/vitest\//.test(u))).toEqual([]);
    });
  },
);
