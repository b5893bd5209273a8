/** One address from `virsh domifaddr`. */
export interface InterfaceAddress {
  readonly iface: string;
  readonly mac: string;
  readonly protocol: 'ipv4' | 'ipv6';
  readonly address: string;
  readonly prefix: number;
}

/**
 * Parses `virsh domifaddr` output (with or without its header). A line with `-` in the name
 * and MAC columns is another address of the interface above.
 */
export function parseDomIfAddr(text: string): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  let iface = '';
  let mac = '';
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(\S+)\s+(ipv4|ipv6)\s+(\S+)\/(\d+)\s*$/.exec(line);
    if (!m) continue;
    const [, name = '', hw = '', protocol, address = '', prefix = '0'] = m;
    if (name !== '-') iface = name;
    if (hw !== '-') mac = hw;
    out.push({ iface, mac, protocol: protocol as 'ipv4' | 'ipv6', address, prefix: Number(prefix) });
  }
  return out;
}

/** The address to reach a guest at: the first IPv4, else the first non-link-local IPv6. */
export function pickGuestAddress(addresses: readonly InterfaceAddress[]): string | undefined {
  return (
    addresses.find((a) => a.protocol === 'ipv4' && !a.address.startsWith('127.'))?.address ??
    addresses.find((a) => a.protocol === 'ipv6' && !/^fe80:/i.test(a.address) && a.address !== '::1')?.address
  );
}
