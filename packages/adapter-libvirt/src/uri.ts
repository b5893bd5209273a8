import { InvalidInputError } from '@tandem/core';

/** A libvirt connection URI, taken apart. */
export interface LibvirtUri {
  readonly uri: string;
  /** `qemu`, `test`, ... */
  readonly driver: string;
  /** `ssh`, `libssh`, `libssh2`, `tcp`, `tls`, `unix` or undefined (local default). */
  readonly transport?: string;
  readonly user?: string;
  readonly host?: string;
  readonly port?: number;
  /** `/system`, `/session`, `/default`. */
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  /** True when libvirtd runs on another machine (or is reached through the network). */
  readonly remote: boolean;
}

/**
 * Parses a libvirt URI such as `qemu:///system` or
 * `qemu+ssh://root@host:2222/system?keyfile=/k`.
 */
export function parseLibvirtUri(uri: string): LibvirtUri {
  const m = /^([a-z0-9]+)(?:\+([a-z0-9]+))?:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(uri);
  if (!m) {
    throw new InvalidInputError(
      `"${uri}" is not a libvirt URI. Expected something like qemu:///system or qemu+ssh://user@host/system.`,
      { details: { uri } },
    );
  }
  const [, driver = '', transport, authority = '', path = '/', query = ''] = m;
  const at = authority.lastIndexOf('@');
  const userPart = at >= 0 ? authority.slice(0, at) : undefined;
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostPort);
  const host = hp?.[1] ? hp[1].replace(/^\[|\]$/g, '') : undefined;
  const port = hp?.[2] ? Number(hp[2]) : undefined;
  // The last of repeated parameters wins; fromEntries keeps a `__proto__` parameter as one.
  const params: Record<string, string> = Object.fromEntries(new URLSearchParams(query));
  const t = transport?.toLowerCase();
  return {
    uri,
    driver: driver.toLowerCase(),
    ...(t ? { transport: t } : {}),
    ...(userPart ? { user: decodeURIComponent(userPart) } : {}),
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    path,
    params,
    remote: (t !== undefined && t !== 'unix') || (host !== undefined && host !== ''),
  };
}

/** True for transports that reach the host over SSH. */
export function isSshTransport(u: LibvirtUri): boolean {
  return u.transport === 'ssh' || u.transport === 'libssh' || u.transport === 'libssh2';
}
