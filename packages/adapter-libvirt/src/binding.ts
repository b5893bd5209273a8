/**
 * The slice of the `@unraid/libvirt` N-API binding Tandem uses, typed here so the package
 * type-checks and installs where the optional binding could not be built.
 */

/** libvirt's virDomainInfo as the binding returns it. */
export interface NativeDomainInfo {
  readonly state: number;
  /** KiB. */
  readonly maxMem: number;
  readonly memory: number;
  readonly nrVirtCpu: number;
}

/** A domain handle from the binding. */
export interface NativeDomain {
  getName(): Promise<string>;
  getUUIDString(): Promise<string>;
  getInfo(): Promise<NativeDomainInfo>;
  getXMLDesc(flags?: number): Promise<string>;
  create(): Promise<void>;
  shutdown(): Promise<void>;
  suspend(): Promise<void>;
  resume(): Promise<void>;
  destroy(): Promise<void>;
  undefine(): Promise<void>;
}

/** A connection from the binding. */
export interface NativeHypervisor {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(flags?: number): Promise<NativeDomain[]>;
  domainLookupByName(name: string): Promise<NativeDomain>;
  domainDefineXML(xml: string): Promise<NativeDomain>;
  nodeGetInfo(): Promise<{ readonly memory: number; readonly cpus: number }>;
  connectGetHostname(): Promise<string>;
}

/** virConnectListAllDomainsFlags used here. */
export const ListFlags = { ACTIVE: 1, INACTIVE: 2, MANAGEDSAVE: 256 } as const;

/** The binding's module, or why it could not be loaded. */
export type BindingLoad =
  | { readonly ok: true; readonly create: (uri: string) => NativeHypervisor }
  | { readonly ok: false; readonly reason: string };

let cached: Promise<BindingLoad> | undefined;

/** Loads `@unraid/libvirt` once per process. Never throws. */
export function loadBinding(): Promise<BindingLoad> {
  cached ??= (async (): Promise<BindingLoad> => {
    // A variable specifier keeps TypeScript from requiring the optional package at build time.
    const specifier: string = '@unraid/libvirt';
    try {
      const mod = (await import(specifier)) as { Hypervisor?: new (o: { uri: string }) => NativeHypervisor };
      const Hypervisor = mod.Hypervisor;
      if (typeof Hypervisor !== 'function') return { ok: false, reason: 'the package does not export Hypervisor' };
      // Constructing loads the native addon; do it once here so a missing build shows up now.
      new Hypervisor({ uri: 'test:///default' });
      return { ok: true, create: (uri) => new Hypervisor({ uri }) };
    } catch (err) {
      return { ok: false, reason: (err as Error).message.split('\n')[0] ?? String(err) };
    }
  })();
  return cached;
}

/** What to tell a user whose binding is missing. */
export const BINDING_FIX =
  'Install libvirt\'s development files and a C++ toolchain (Debian/Ubuntu: apt-get install libvirt-dev build-essential python3), then run "npm rebuild @unraid/libvirt" (npm 11: approve its install script with "npm install-scripts approve @unraid/libvirt" first).';
