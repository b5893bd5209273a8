import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ConflictError, type AnyTandemEvent } from '@tandem/core';
import { AgentProtocolError, AgentVersionError, PeerRefusedError } from './errors.js';
import type { HostAgent } from './host-agent.js';
import { peerCredentials, type PeerCredentials } from './peer-cred.js';
import {
  AGENT_API_VERSION,
  LineDecoder,
  MAX_MESSAGE_BYTES,
  compatibleVersion,
  decodeRequest,
  encodeMessage,
  toWireError,
  type AgentParams,
  type AgentRequest,
} from './protocol.js';

/** Options of {@link AgentServer}. */
export interface AgentServerOptions {
  agent: HostAgent;
  socketPath: string;
  /** The socket file's mode. Default 0600; its directory is made 0700 when the agent creates it. */
  socketMode?: number;
  /** The uid allowed to connect. Default: the agent's own. */
  allowUid?: number;
  /** How the peer's credentials are read. Default: {@link peerCredentials}. */
  peerCredentials?: (socket: Socket) => Promise<PeerCredentials | null>;
  /** Called after a `shutdown` request was answered. */
  onShutdown?: () => void;
  /** Told of refused connections and protocol errors. */
  log?: (line: string) => void;
}

/** A subscriber falling this far behind (bytes not yet written to it) is disconnected. */
const MAX_BACKLOG = 16 << 20;

/**
 * The agent's local socket: JSON lines, one request or reply per line, peer credentials checked
 * on every connection before a byte is read. See docs/host-agent.md for the protocol.
 *
 * @example
 * ```ts
 * const server = new AgentServer({ agent, socketPath: agentSocketPath(stateDir) });
 * await server.listen();
 * ```
 */
export class AgentServer {
  readonly socketPath: string;
  readonly #o: AgentServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(options: AgentServerOptions) {
    this.#o = options;
    this.socketPath = options.socketPath;
    this.#server = createServer({ pauseOnConnect: true }, (socket) => void this.#accept(socket));
  }

  /** Listens on the socket; refuses (ConflictError) when another agent answers on it. */
  async listen(): Promise<void> {
    const dir = dirname(this.socketPath);
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existsSync(this.socketPath)) {
      if (await answers(this.socketPath)) {
        throw new ConflictError(
          `An agent already listens on ${this.socketPath}; stop it first (tandem agent status).`,
          {
            details: { socket: this.socketPath },
          },
        );
      }
      if (lstatSync(this.socketPath).isSocket()) unlinkSync(this.socketPath); // left by a crash
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.socketPath, this.#o.socketMode ?? 0o600);
  }

  /** Stops listening and disconnects every client. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #accept(socket: Socket): Promise<void> {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    const allow = this.#o.allowUid ?? process.getuid?.() ?? -1;
    let peer: PeerCredentials | null;
    try {
      peer = await (this.#o.peerCredentials ?? peerCredentials)(socket);
    } catch {
      peer = null;
    }
    if (!peer || peer.uid !== allow || peer.euid !== allow) {
      const who = peer ? `uid ${peer.uid} (pid ${peer.pid})` : 'a process whose user could not be established';
      this.#o.log?.(`refused a connection from ${who}`);
      const err = new PeerRefusedError(
        `This agent belongs to uid ${allow} and refuses ${who}: only its own user may use it.`,
        { details: { allowUid: allow, ...(peer ? { peerUid: peer.uid, peerPid: peer.pid } : {}) } },
      );
      socket.end(encodeMessage({ id: null, error: toWireError(err) }));
      return;
    }
    new Connection(socket, this.#o).start();
  }
}

/** One client's connection: hello first, then requests in any order, events pushed as they come. */
class Connection {
  #hello = false;
  #subs = new Map<string, () => void>();
  #nextSub = 1;
  #queue: Promise<void> = Promise.resolve();

  constructor(
    readonly socket: Socket,
    readonly o: AgentServerOptions,
  ) {}

  start(): void {
    const decoder = new LineDecoder(MAX_MESSAGE_BYTES, () =>
      this.send({
        id: null,
        error: toWireError(
          new AgentProtocolError(`A message longer than ${MAX_MESSAGE_BYTES} bytes was skipped.`, {
            details: { maxBytes: MAX_MESSAGE_BYTES },
          }),
        ),
      }),
    );
    this.socket.on('data', (chunk: Buffer) => {
      // A connection's requests are answered one at a time, in order (a client that wants
      // concurrency opens another connection).
      for (const line of decoder.push(chunk)) this.#queue = this.#queue.then(() => this.#handle(line));
    });
    this.socket.on('close', () => {
      for (const off of this.#subs.values()) off();
      this.#subs.clear();
    });
    this.socket.resume();
  }

  send(message: unknown): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(encodeMessage(message));
  }

  async #handle(line: string): Promise<void> {
    let req: AgentRequest;
    try {
      req = decodeRequest(line);
    } catch (err) {
      const id = (err as AgentProtocolError).details?.['id'];
      this.send({ id: typeof id === 'string' || typeof id === 'number' ? id : null, error: toWireError(err) });
      return;
    }
    try {
      const result = await this.#dispatch(req);
      this.send({ id: req.id, result: result ?? null });
      if (req.method === 'shutdown') setImmediate(() => this.o.onShutdown?.());
    } catch (err) {
      this.send({ id: req.id, error: toWireError(err) });
    }
  }

  async #dispatch(req: AgentRequest): Promise<unknown> {
    const agent = this.o.agent;
    if (req.method === 'hello') {
      const p = req.params as AgentParams<'hello'>;
      if (!compatibleVersion(p.apiVersion)) {
        throw new AgentVersionError(
          `This agent speaks API ${AGENT_API_VERSION}; the client speaks ${p.apiVersion}, a newer major version. Update the agent (and restart it: tandem agent install).`,
          { details: { agent: AGENT_API_VERSION, client: p.apiVersion } },
        );
      }
      this.#hello = true;
      return { apiVersion: AGENT_API_VERSION, agentVersion: agent.version, pid: process.pid, uid: process.getuid?.() };
    }
    if (!this.#hello) {
      throw new AgentProtocolError(
        `Say hello first: {"id":1,"method":"hello","params":{"apiVersion":"${AGENT_API_VERSION}"}}`,
      );
    }
    const p = req.params as never;
    switch (req.method) {
      case 'status':
        return agent.status();
      case 'sessions':
        return { sessions: await agent.sessions() };
      case 'up':
        return agent.up(p);
      case 'down':
        return agent.down(p);
      case 'stop':
        return agent.stop(p);
      case 'suspend':
        return agent.suspend(p);
      case 'resume':
        return agent.resume(p);
      case 'end':
        return agent.end(p);
      case 'lock':
        return agent.lock(p);
      case 'unlock':
        return agent.unlock(p);
      case 'credentials.hold':
        return agent.holdCredentials(req.params as AgentParams<'credentials.hold'>);
      case 'snapshot.create':
        return agent.snapshotCreate(p);
      case 'snapshot.list':
        return { snapshots: await agent.snapshotList(p) };
      case 'snapshot.revert':
        return agent.snapshotRevert(p);
      case 'snapshot.delete':
        return agent.snapshotDelete(p);
      case 'activity': {
        const a = req.params as AgentParams<'activity'>;
        const r = agent.activity({
          source: a.source,
          ...(a.workspace ? { workspace: a.workspace } : {}),
          ...(a.idle !== undefined ? { idle: a.idle } : {}),
          ...(a.at ? { at: Date.parse(a.at) } : {}),
        });
        return { at: new Date(r.at).toISOString() };
      }
      case 'events.subscribe':
        return this.#subscribe(req.params as AgentParams<'events.subscribe'>);
      case 'events.unsubscribe': {
        const { subscription } = req.params as AgentParams<'events.unsubscribe'>;
        const off = this.#subs.get(subscription);
        off?.();
        this.#subs.delete(subscription);
        return { unsubscribed: off !== undefined };
      }
      case 'shutdown':
        return { stopping: true };
    }
    throw new AgentProtocolError(`Unknown method ${String(req.method)}.`);
  }

  /** Live events, after the stored ones since `since`/`afterId`: no gap, no duplicate between the two. */
  #subscribe(p: AgentParams<'events.subscribe'>): { subscription: string; replayed: number } {
    const agent = this.o.agent;
    const id = `s${this.#nextSub++}`;
    const types = p.types ? new Set(p.types) : undefined;
    const wanted = (e: AnyTandemEvent): boolean =>
      (!types || types.has(e.type)) && (!p.workspace || e.workspace === p.workspace);
    const pending: AnyTandemEvent[] = [];
    let live = false;
    const listener = (e: AnyTandemEvent): void => {
      if (!wanted(e)) return;
      if (!live) pending.push(e);
      else this.#push(id, e);
    };
    agent.events.on('*', listener);
    this.#subs.set(id, () => agent.events.off('*', listener));
    const replay = p.since || p.afterId ? agent.replay(p) : [];
    const seen = new Set(replay.map((e) => e.id));
    // The reply goes first, then the replay, then the live events (in order, once each).
    setImmediate(() => {
      for (const e of replay) this.#push(id, e);
      for (const e of pending) if (!seen.has(e.id)) this.#push(id, e);
      live = true;
    });
    return { subscription: id, replayed: replay.length };
  }

  #push(subscription: string, event: AnyTandemEvent): void {
    if (this.socket.writableLength > MAX_BACKLOG) {
      this.socket.destroy();
      return;
    }
    this.send({ subscription, event });
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
