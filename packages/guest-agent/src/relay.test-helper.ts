import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The built agent, as the guest image runs it. */
export const AGENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

/**
 * A guest channel as QEMU makes it, over unix sockets in a scratch directory: the agent finds
 * `dev/vport1p1` through a fake `sys/class/virtio-ports/vport1p1/name` and connects to it; the
 * host connects to `host.sock` (one connection at a time, as QEMU's chardev). Bytes are relayed
 * both ways; the host side closing ends the agent's connection (the EOF a virtio port gives);
 * the agent going away leaves the host connection open and silent.
 */
export class ChannelRelay {
  readonly dir: string;
  #guest: Socket | undefined;
  #host: Socket | undefined;
  #servers: Server[] = [];
  hostConnections = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'tandem-guest-agent-'));
  }

  get sysDir(): string {
    return join(this.dir, 'sys');
  }
  get devDir(): string {
    return join(this.dir, 'dev');
  }

  async start(portName = 'org.tandem.agent.0'): Promise<this> {
    mkdirSync(join(this.sysDir, 'class', 'virtio-ports', 'vport1p1'), { recursive: true });
    mkdirSync(join(this.sysDir, 'class', 'virtio-ports', 'vport1p2'), { recursive: true });
    writeFileSync(join(this.sysDir, 'class', 'virtio-ports', 'vport1p1', 'name'), `${portName}\n`);
    writeFileSync(join(this.sysDir, 'class', 'virtio-ports', 'vport1p2', 'name'), 'org.qemu.guest_agent.0\n');
    mkdirSync(this.devDir, { recursive: true });
    const guestServer = createServer((s) => {
      this.#guest?.destroy();
      this.#guest = s;
      s.on('data', (d) => this.#host?.write(d));
      s.on('error', () => undefined);
      s.on('close', () => {
        if (this.#guest === s) this.#guest = undefined;
      });
    });
    const hostServer = createServer((s) => {
      if (this.#host) {
        s.destroy();
        return;
      }
      this.hostConnections++;
      this.#host = s;
      s.on('data', (d) => this.#guest?.write(d));
      s.on('error', () => undefined);
      s.on('close', () => {
        if (this.#host !== s) return;
        this.#host = undefined;
        this.#guest?.end();
      });
    });
    await new Promise<void>((r) => guestServer.listen(join(this.devDir, 'vport1p1'), r));
    await new Promise<void>((r) => hostServer.listen(join(this.dir, 'host.sock'), r));
    this.#servers = [guestServer, hostServer];
    return this;
  }

  /** The adapter's guest channel, as GuestConnection opens it. */
  readonly guestChannel = {
    open: (): Promise<Duplex> =>
      new Promise((resolve, reject) => {
        const s = connect(join(this.dir, 'host.sock'));
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
  };

  async stop(): Promise<void> {
    this.#guest?.destroy();
    this.#host?.destroy();
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the built agent as a child process against a relay, with its own scratch state. */
export class AgentProcess {
  child: ChildProcess | undefined;
  log = '';
  readonly stateDir: string;
  readonly urlSocket: string;
  readonly procDir: string;
  readonly etcDir: string;

  constructor(
    readonly relay: ChannelRelay,
    readonly extraArgs: string[] = [],
    readonly env: NodeJS.ProcessEnv = process.env,
    /** The Node.js binary that runs the agent (the Node 22 tests pass theirs). */
    readonly node: string = process.execPath,
  ) {
    this.stateDir = join(relay.dir, 'state');
    this.urlSocket = join(relay.dir, 'url.sock');
    this.procDir = join(relay.dir, 'proc');
    this.etcDir = join(relay.dir, 'etc');
    mkdirSync(join(this.procDir, 'sys', 'kernel'), { recursive: true });
    mkdirSync(this.etcDir, { recursive: true });
    if (!existsSync(join(this.procDir, 'sys', 'kernel', 'hostname'))) {
      writeFileSync(join(this.procDir, 'sys', 'kernel', 'hostname'), 'localhost\n');
    }
  }

  start(): this {
    if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run npx tsc -b first`);
    const child = spawn(
      this.node,
      [
        AGENT_MAIN,
        '--sys-dir',
        this.relay.sysDir,
        '--dev-dir',
        this.relay.devDir,
        '--state-dir',
        this.stateDir,
        '--url-socket',
        this.urlSocket,
        '--proc-dir',
        this.procDir,
        '--etc-dir',
        this.etcDir,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: this.env },
    );
    child.stdout.on('data', (b: Buffer) => (this.log += b.toString()));
    child.stderr.on('data', (b: Buffer) => (this.log += b.toString()));
    this.child = child;
    return this;
  }

  /** Kills the agent outright (SIGKILL): no goodbye on the channel. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Runs `tandem-guest-agent forward-url URL` as a guest user would. */
  forwardUrl(url: string): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      const c = spawn(this.node, [AGENT_MAIN, 'forward-url', url, '--url-socket', this.urlSocket], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      c.stdout.on('data', (b: Buffer) => (output += b.toString()));
      c.stderr.on('data', (b: Buffer) => (output += b.toString()));
      c.once('close', (code) => resolve({ code: code ?? 1, output }));
    });
  }
}
