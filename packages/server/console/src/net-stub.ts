// node:net's isIP for core's CIDR and IP checks, in the browser: the same answers for the
// dotted-quad and IPv6 forms a policy names (the URL parser checks IPv6 the way WHATWG does).
const V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;

/** 4 for an IPv4 address, 6 for IPv6, 0 for anything else (as node:net's isIP). */
export function isIP(s: string): 0 | 4 | 6 {
  if (V4.test(s)) return 4;
  if (!s.includes(':') || /[^0-9a-fA-F:.%]/.test(s.split('%')[0] ?? '')) return 0;
  const [addr, zone] = s.split('%');
  if (zone !== undefined && !/^[0-9A-Za-z_.~-]+$/.test(zone)) return 0;
  try {
    new URL(`http://[${addr ?? ''}]/`);
    return 6;
  } catch {
    return 0;
  }
}
export const isIPv4 = (s: string): boolean => isIP(s) === 4;
export const isIPv6 = (s: string): boolean => isIP(s) === 6;
export default { isIP, isIPv4, isIPv6 };
