// A real HTTP event receiver for the uplink tests (not shipped): idempotent by event id, like
// the management server; it records every delivery so tests can count them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the receiver treats the next requests. */
export type ReceiverMode = 'ok' | 'refuse' | 'hang' | 'store-then-hang';

export interface TestReceiver {
  url: string;
  /** Stored events' ids, in the order first received (the receiver's store). */
  stored: string[];
  /** Every delivery of every id (a re-sent batch shows up twice). */
  deliveries: string[][];
  /** Requests held open (hang modes), with the ids they carried. */
  held: { ids: string[]; res: ServerResponse }[];
  mode: ReceiverMode;
  /** Stops listening and drops every connection: the uplink gets ECONNREFUSED until `open`. */
  shut(): Promise<void>;
  open(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<TestReceiver> {
  const stored: string[] = [];
  const seen = new Set<string>();
  const deliveries: string[][] = [];
  const held: TestReceiver['held'] = [];
  const sockets = new Set<Socket>();
  let server: Server;
  let port = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { events: { id: string }[] };
      const ids = body.events.map((e) => e.id);
      if (r.mode === 'refuse') {
        res.writeHead(503).end();
        return;
      }
      if (r.mode === 'hang') {
        held.push({ ids, res });
        return;
      }
      deliveries.push(ids);
      for (const id of ids) {
        if (!seen.has(id)) {
          seen.add(id);
          stored.push(id);
        }
      }
      if (r.mode === 'store-then-hang') {
        held.push({ ids, res });
        return;
      }
      res.writeHead(204).end();
    });
  };
  const listen = (): Promise<void> =>
    new Promise((resolve) => {
      server = createServer(handler);
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const shut = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const r: TestReceiver = {
    url: `http://127.0.0.1:${port}/events`,
    stored,
    deliveries,
    held,
    mode: 'ok',
    shut,
    open: listen,
    close: async () => {
      for (const h of held.splice(0)) h.res.destroy();
      await shut().catch(() => undefined);
    },
  };
  return r;
}
