import { execFile } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Who is on the other end of a unix socket connection, as the kernel knows it. */
export interface PeerCredentials {
  /** The process holding the peer socket. */
  pid: number;
  /** Its real and effective user ids. */
  uid: number;
  euid: number;
}

/**
 * Finds the process on the other end of an accepted unix socket connection and its user.
 *
 * Node has no `SO_PEERCRED`, and no maintained N-API module exposes it (the ones on npm are
 * abandoned or not N-API, and a non-N-API addon does not load under Node 24). So the agent asks
 * the kernel the way `ss -xp` does: the accepted socket's inode comes from `/proc/self/fd`, the
 * kernel's sock_diag (through `ss -x`, iproute2) names the peer socket's inode, and the process
 * holding that inode is found in `/proc/<pid>/fd`; its uid is read from `/proc/<pid>/status`.
 * A process of another user is not readable in `/proc` unless the agent is root, so when no
 * process is found the answer is `null` and the caller refuses: this fails closed.
 *
 * @example
 * ```ts
 * const peer = await peerCredentials(socket);
 * if (peer?.uid !== process.getuid?.()) socket.destroy();
 * ```
 */
export async function peerCredentials(socket: Socket): Promise<PeerCredentials | null> {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const own = socketInode(await readlink(`/proc/self/fd/${fd}`).catch(() => ''));
  if (own === null) return null;
  const peer = await peerInode(own);
  if (peer === null) return null;
  const holders = await processesHolding(peer);
  if (holders.length === 0) return null;
  // A socket can be shared by several processes (a fork); every holder must be the same user.
  const creds = await Promise.all(holders.map(credentialsOf));
  if (creds.some((c) => c === null)) return null;
  const all = creds as PeerCredentials[];
  const first = all[0]!;
  return all.every((c) => c.uid === first.uid && c.euid === first.euid) ? first : { ...first, uid: -1, euid: -1 };
}

function socketInode(link: string): number | null {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

/** The peer inode of the unix socket `inode`, from the kernel's socket table (sock_diag). */
async function peerInode(inode: number): Promise<number | null> {
  const { stdout } = await run('ss', ['-xHn'], { maxBuffer: 64 << 20 });
  for (const line of stdout.split('\n')) {
    // u_str ESTAB 0 0 /path/agent.sock 2008913 * 2008912
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    if (Number(f[5]) === inode) {
      const p = Number(f.at(-1));
      return Number.isInteger(p) && p > 0 ? p : null;
    }
  }
  return null;
}

async function processesHolding(inode: number): Promise<number[]> {
  const want = `socket:[${inode}]`;
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      let fds: string[];
      try {
        fds = await readdir(`/proc/${pid}/fd`);
      } catch {
        return; // another user's process (not readable), or gone
      }
      for (const fd of fds) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === want) {
          found.push(Number(pid));
          return;
        }
      }
    }),
  );
  return found;
}

async function credentialsOf(pid: number): Promise<PeerCredentials | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const m = status ? /^Uid:\s+(\d+)\s+(\d+)/m.exec(status) : null;
  return m ? { pid, uid: Number(m[1]), euid: Number(m[2]) } : null;
}
