import { isIP } from 'node:net';

/** True when `text` is an IPv4 or IPv6 prefix in CIDR notation (`10.20.0.0/16`, `fd00::/8`). */
export function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const addr = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  const n = Number(bits);
  return family === 4 ? n <= 32 : n <= 128;
}
