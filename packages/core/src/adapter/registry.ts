import { InvalidInputError, NoAdapterError, NotFoundError, UnsupportedCapabilityError } from '../errors.js';
import { assertCapabilitiesMatchMembers, capabilityMismatches } from './capability-check.js';
import type { AdapterCapabilities, AdapterModule, HypervisorAdapter, ProbeResult } from './types.js';

/** One candidate's verdict during detection. */
export interface DetectionReport {
  readonly adapter: string;
  readonly result: ProbeResult;
}

/** The adapter detection chose, with what every candidate said. */
export interface Detection {
  readonly adapter: HypervisorAdapter;
  readonly probe: Extract<ProbeResult, { usable: true }>;
  readonly reports: readonly DetectionReport[];
}

/**
 * Known adapter modules by name, with ordered detection.
 *
 * @example
 * ```ts
 * const registry = new AdapterRegistry([mockAdapterModule]);
 * const { adapter } = await registry.detect();
 * ```
 */
export class AdapterRegistry {
  readonly #modules = new Map<string, AdapterModule>();

  constructor(modules: readonly AdapterModule[] = []) {
    for (const m of modules) this.register(m);
  }

  /** Adds (or replaces) an adapter module. Detection tries modules in registration order. */
  register(module: AdapterModule): this {
    this.#modules.set(module.name, module);
    return this;
  }

  /** Names in detection order. */
  names(): string[] {
    return [...this.#modules.keys()];
  }

  /**
   * Creates the named adapter. Throws InvalidInputError naming the adapter and the missing
   * member when its capabilities claim something it does not implement.
   */
  create(name: string, options?: unknown): HypervisorAdapter {
    const module = this.#modules.get(name);
    if (!module) {
      throw new NotFoundError(`No adapter named "${name}". Known adapters: ${this.names().join(', ') || '(none)'}.`, {
        details: { adapter: name, known: this.names() },
      });
    }
    const adapter = module.create(options);
    assertCapabilitiesMatchMembers(adapter);
    return adapter;
  }

  /**
   * Probes each candidate in order (all registered ones by default) and returns the first
   * usable one. When none fits, throws NoAdapterError listing every candidate's reason.
   */
  async detect(
    options: { candidates?: readonly string[]; options?: Record<string, unknown> } = {},
  ): Promise<Detection> {
    const reports: DetectionReport[] = [];
    for (const name of options.candidates ?? this.names()) {
      let adapter: HypervisorAdapter;
      try {
        adapter = this.create(name, options.options?.[name]);
      } catch (err) {
        reports.push({
          adapter: name,
          result: { usable: false, adapter: name, reason: String((err as Error).message) },
        });
        continue;
      }
      const result = await safeProbe(adapter);
      reports.push({ adapter: name, result });
      if (result.usable) return { adapter, probe: result, reports };
      await adapter.close?.();
    }
    const lines = reports.map((r) =>
      r.result.usable
        ? `${r.adapter}: usable`
        : `${r.adapter}: ${r.result.reason}${r.result.fix ? ` (fix: ${r.result.fix})` : ''}`,
    );
    throw new NoAdapterError(`No hypervisor adapter is usable on this host:\n  ${lines.join('\n  ')}`, {
      details: { reports },
    });
  }

  /** Probes every registered adapter, for `tandem doctor`. */
  async probeAll(options: Record<string, unknown> = {}): Promise<DetectionReport[]> {
    const out: DetectionReport[] = [];
    for (const name of this.names()) {
      let adapter: HypervisorAdapter | undefined;
      try {
        adapter = this.create(name, options[name]);
        out.push({ adapter: name, result: await safeProbe(adapter) });
      } catch (err) {
        out.push({ adapter: name, result: { usable: false, adapter: name, reason: (err as Error).message } });
      } finally {
        await adapter?.close?.().catch(() => undefined);
      }
    }
    return out;
  }
}

async function safeProbe(adapter: HypervisorAdapter): Promise<ProbeResult> {
  try {
    return await adapter.probe();
  } catch (err) {
    return {
      usable: false,
      adapter: adapter.name,
      reason: `probe failed: ${(err as Error).message} (a bug in the adapter: probe() must never throw; return a reason)`,
    };
  }
}

/**
 * Loads a third-party adapter by package name. The package must export `tandemAdapter`
 * (an {@link AdapterModule}) or have one as its default export. Every adapter the returned
 * module creates is checked against its capabilities (see
 * {@link assertCapabilitiesMatchMembers}): a claimed capability without its member is an
 * InvalidInputError naming the adapter and the member.
 *
 * @example
 * ```ts
 * const registry = new AdapterRegistry();
 * registry.register(await loadAdapterModule('tandem-adapter-qmp'));
 * const adapter = registry.create('qmp', { socketDir: '/run/qmp' });
 * ```
 */
export async function loadAdapterModule(packageName: string): Promise<AdapterModule> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(packageName)) as Record<string, unknown>;
  } catch (err) {
    throw new NotFoundError(
      `Cannot load adapter package "${packageName}": ${(err as Error).message}. Install it with npm install ${packageName}.`,
      {
        cause: err,
        details: { package: packageName },
      },
    );
  }
  const candidate = (mod['tandemAdapter'] ?? mod['default']) as Partial<AdapterModule> | undefined;
  if (!candidate || typeof candidate.name !== 'string' || typeof candidate.create !== 'function') {
    throw new InvalidInputError(
      `Package "${packageName}" is not a Tandem adapter: expected an export named "tandemAdapter" (or a default export) with a name and a create() function.`,
      { details: { package: packageName, exports: Object.keys(mod) } },
    );
  }
  const module = candidate as AdapterModule;
  return {
    name: module.name,
    create: (options?: unknown) => {
      const adapter = module.create(options);
      assertCapabilitiesMatchMembers(adapter);
      return adapter;
    },
  };
}

type OptionalOp = 'snapshots' | 'seamless' | 'guestChannel' | 'diskEncryption' | 'save';

/** Returns true when the adapter's capabilities include the operation. */
export function supports(capabilities: AdapterCapabilities, op: OptionalOp): boolean {
  switch (op) {
    case 'snapshots':
      return capabilities.snapshots !== false;
    case 'seamless':
      return capabilities.seamlessWindows.length > 0;
    case 'guestChannel':
      return capabilities.guestChannel.length > 0;
    case 'diskEncryption':
      return capabilities.diskEncryption;
    case 'save':
      return capabilities.suspend.save;
  }
}

/** Returns the adapter's snapshot operations, or throws UnsupportedCapabilityError. */
export function requireSnapshots(adapter: HypervisorAdapter): NonNullable<HypervisorAdapter['snapshots']> {
  requireCapability(adapter, 'snapshots');
  return adapter.snapshots!;
}

// The capability names capabilityMismatches() reports, by optional operation.
const CAPABILITY_OF: Record<OptionalOp, string> = {
  snapshots: 'snapshots',
  seamless: 'seamlessWindows',
  guestChannel: 'guestChannel',
  diskEncryption: 'diskEncryption',
  save: 'suspend.save',
};

/**
 * Throws UnsupportedCapabilityError unless the adapter's capabilities offer `op`, and
 * InvalidInputError (fault `adapter`, naming the adapter and the member) when they claim it
 * but the adapter lacks the member that implements it.
 */
export function requireCapability(adapter: HypervisorAdapter, op: OptionalOp): void {
  if (!supports(adapter.capabilities, op)) {
    throw new UnsupportedCapabilityError(`The ${adapter.name} adapter does not support ${op}.`, {
      details: { adapter: adapter.name, capability: op },
    });
  }
  const missing = capabilityMismatches(adapter).filter((m) => m.capability === CAPABILITY_OF[op]);
  if (missing.length > 0) {
    const members = missing.map((m) => m.member).join(', ');
    throw new InvalidInputError(
      `The ${adapter.name} adapter claims ${CAPABILITY_OF[op]} but has no ${members}: a bug in the adapter. Set the capability to false or implement the members.`,
      { fault: 'adapter', details: { adapter: adapter.name, capability: op, missing: missing.map((m) => m.member) } },
    );
  }
}
