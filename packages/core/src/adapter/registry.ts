import { InvalidInputError, NoAdapterError, NotFoundError, UnsupportedCapabilityError } from '../errors.js';
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

  /** Creates the named adapter. */
  create(name: string, options?: unknown): HypervisorAdapter {
    const module = this.#modules.get(name);
    if (!module) {
      throw new NotFoundError(`No adapter named "${name}". Known adapters: ${this.names().join(', ') || '(none)'}.`, {
        details: { adapter: name, known: this.names() },
      });
    }
    return module.create(options);
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
    return { usable: false, adapter: adapter.name, reason: `probe failed: ${(err as Error).message}` };
  }
}

/**
 * Loads a third-party adapter by package name. The package must export `tandemAdapter`
 * (an {@link AdapterModule}) or have one as its default export.
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
  return candidate as AdapterModule;
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
  if (!supports(adapter.capabilities, 'snapshots') || !adapter.snapshots) {
    throw new UnsupportedCapabilityError(`The ${adapter.name} adapter does not support snapshots.`, {
      details: { adapter: adapter.name, capability: 'snapshots' },
    });
  }
  return adapter.snapshots;
}

/** Throws UnsupportedCapabilityError unless the adapter offers `op`. */
export function requireCapability(adapter: HypervisorAdapter, op: OptionalOp): void {
  if (!supports(adapter.capabilities, op)) {
    throw new UnsupportedCapabilityError(`The ${adapter.name} adapter does not support ${op}.`, {
      details: { adapter: adapter.name, capability: op },
    });
  }
}
