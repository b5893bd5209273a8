import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { LocalRunner } from './local-runner.js';
import { hostileString } from './test-strings.js';

const echo = fileURLToPath(new URL('./fixtures/argv-echo.cjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'tandem-local-'));
const canary = join(scratch, 'CANARY');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Echo {
  argv: string[];
  stdin: string;
  env: Record<string, string>;
}

describe('LocalRunner', () => {
  const runner = new LocalRunner();

  it('passes hostile arguments to the program exactly, with no shell in between', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileString(canary), { maxLength: 5 }), async (args) => {
        const r = await runner.run({ command: echo, args });
        expect(r.exitCode).toBe(0);
        expect((JSON.parse(r.stdout) as Echo).argv).toEqual(args);
      }),
      { numRuns: 40 },
    );
    expect(existsSync(canary)).toBe(false);
  });

  it('writes input to stdin, adds environment variables and keeps stderr apart', async () => {
    const r = await runner.run({ command: echo, args: ['x'], input: 'secret\nline2', env: { TANDEM_A: "it's" } });
    const out = JSON.parse(r.stdout) as Echo;
    expect(out.stdin).toBe('secret\nline2');
    expect(out.env['TANDEM_A']).toBe("it's");
    expect(r.stderr).toBe('argv-echo done\n');
  });

  it('reports a non-zero exit code as a result', async () => {
    const r = await runner.run({ command: echo, env: { TANDEM_ECHO_EXIT: '3' } });
    expect(r.exitCode).toBe(3);
  });

  it('throws TimeoutError after timeoutMs, with what the program printed', async () => {
    const err = await runner
      .run({ command: echo, env: { TANDEM_ECHO_SLEEP_MS: '20000' }, timeoutMs: 200 })
      .catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_TIMEOUT')).toBe(true);
    expect((err as TandemError).details['timeoutMs']).toBe(200);
  });

  it('throws CancelledError when the signal aborts, before or during the run', async () => {
    const ac = new AbortController();
    const pending = runner.run({ command: echo, env: { TANDEM_ECHO_SLEEP_MS: '20000' }, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(TandemError.is(await pending.catch((e: unknown) => e), 'TANDEM_CANCELLED')).toBe(true);
    const again = await runner.run({ command: echo, signal: ac.signal }).catch((e: unknown) => e);
    expect(TandemError.is(again, 'TANDEM_CANCELLED')).toBe(true);
  });

  it('throws HostError naming the program when it does not exist', async () => {
    const err = await runner.run({ command: join(scratch, 'no-such-VBoxManage') }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_HOST')).toBe(true);
    expect((err as Error).message).toContain('no-such-VBoxManage');
  });

  it('rejects a NUL byte with InvalidInputError before any process starts', async () => {
    const marker = join(scratch, 'started');
    const err = await runner.run({ command: 'touch', args: [marker, 'a\0b'] }).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect(existsSync(marker)).toBe(false);
    const bad = await runner.run({ command: 'touch', args: [marker], env: { 'A;B': 'x' } }).catch((e: unknown) => e);
    expect(TandemError.is(bad, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it('starts a long-running program that can be killed', async () => {
    const running = await runner.start({ command: echo, env: { TANDEM_ECHO_SLEEP_MS: '20000' } });
    expect(running.pid).toBeGreaterThan(0);
    expect(running.argv).toEqual([echo]);
    running.kill();
    const r = await running.result;
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
  });
});
