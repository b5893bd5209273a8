// The tandem CLI on a mock hypervisor whose guest channel reaches a real agent process
// (relay-adapter.test-helper.ts), as libvirt's does: what cli.test.ts and cli-sign-in.test.ts share.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, vi } from 'vitest';
import { runCli } from '@tandem/cli';
import { AgentProcess, ChannelRelay } from './relay.test-helper.js';

const ADAPTER = fileURLToPath(new URL('./relay-adapter.test-helper.ts', import.meta.url));

/** What one `tandem` run printed and returned (`json`: stdout parsed, when it is JSON). */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json: unknown;
}

/** One test's scratch directory, channel relay and agent process, and the CLI against them. */
export interface CliRelay {
  readonly dir: string;
  readonly relay: ChannelRelay;
  readonly agent: AgentProcess;
  /** Runs `tandem` in-process with this test's state directory, capturing its output. */
  tandem(...args: string[]): Promise<CliRun>;
  /** Writes workspace `erp` (a linux guest, 512 MiB, no network, plus `specLines`); returns `tandem up`'s arguments for it. */
  upArgs(specLines: string, adapter?: string): string[];
  /** Writes workspace `erp` as {@link CliRelay.upArgs} and runs `tandem up` on it (it must succeed). */
  up(specLines: string): Promise<CliRun>;
}

/** A fresh {@link CliRelay} for every test of the file (registers its beforeEach and afterEach). */
export function cliRelayPerTest(tag: string): CliRelay {
  let dir = '';
  let relay: ChannelRelay | undefined;
  let agent: AgentProcess | undefined;
  let out: string[] = [];
  let err: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), tag));
    relay = await new ChannelRelay().start();
    agent = new AgentProcess(relay).start();
    vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await agent?.kill();
    await relay?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const self: CliRelay = {
    get dir() {
      return dir;
    },
    get relay() {
      return relay!;
    },
    get agent() {
      return agent!;
    },
    async tandem(...args) {
      out = [];
      err = [];
      const code = await runCli(['--state-dir', join(dir, 'state'), ...args]);
      const stdout = out.join('');
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      return { code, stdout, stderr: err.join(''), json };
    },
    upArgs(specLines, adapter = ADAPTER) {
      writeFileSync(
        join(dir, 'erp.yaml'),
        `apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: none }
  ${specLines}
`,
      );
      return [
        'up',
        join(dir, 'erp.yaml'),
        '--adapter',
        adapter,
        '--adapter-option',
        `socket=${join(self.relay.dir, 'host.sock')}`,
        '--adapter-option',
        `stateFile=${join(dir, 'mock.json')}`,
      ];
    },
    async up(specLines) {
      const r = await self.tandem(...self.upArgs(specLines));
      expect(r.code, r.stderr).toBe(0);
      return r;
    },
  };
  return self;
}
