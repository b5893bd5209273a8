import {
  AdapterRegistry,
  InvalidInputError,
  loadAdapterModule,
  type AdapterModule,
  type HypervisorAdapter,
} from '@tandem/core';
import { mockAdapterModule } from '@tandem/core/testing';
import type { StateDir } from './state.js';

/** The adapters the CLI knows by short name, in detection order (the mock only when asked). */
export const BUILTIN_ADAPTERS = ['libvirt', 'virtualbox', 'hyperv', 'mock'] as const;
const DETECT = ['libvirt', 'virtualbox', 'hyperv'];

const PACKAGES: Record<string, string> = {
  libvirt: '@tandem/adapter-libvirt',
  virtualbox: '@tandem/adapter-virtualbox',
  hyperv: '@tandem/adapter-hyperv',
};

async function builtin(name: string): Promise<AdapterModule | undefined> {
  const pkg = PACKAGES[name];
  if (!pkg) return undefined;
  const mod = (await import(pkg)) as { tandemAdapter?: AdapterModule };
  return mod.tandemAdapter;
}

/** Parses repeated `--adapter-option key=value` flags. */
export function parseAdapterOptions(pairs: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new InvalidInputError(`--adapter-option "${pair}" is not key=value (for example uri=qemu:///system).`, {
        details: { option: pair },
      });
    }
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** A registry with the built-in adapters (those that are installed) and the mock. */
export async function cliRegistry(state: StateDir): Promise<AdapterRegistry> {
  const registry = new AdapterRegistry();
  for (const name of DETECT) {
    const mod = await builtin(name).catch(() => undefined);
    if (mod) registry.register(mod);
  }
  registry.register({
    name: 'mock',
    create: (o) => mockAdapterModule.create({ stateFile: state.mockStateFile, ...(o as object) }),
  });
  return registry;
}

/**
 * The adapter a command uses: a built-in by name, a third-party package name (anything with a
 * slash or starting with @ or tandem-adapter-), or detection among the real hypervisors.
 */
export async function openAdapter(
  state: StateDir,
  name: string | undefined,
  options: Record<string, string>,
): Promise<{ adapter: HypervisorAdapter; name: string }> {
  const registry = await cliRegistry(state);
  const wanted = name ?? process.env['TANDEM_ADAPTER'];
  if (wanted) {
    if (!registry.names().includes(wanted)) {
      if (/^(@|tandem-adapter-)|\//.test(wanted)) registry.register(await loadAdapterModule(wanted));
      else {
        throw new InvalidInputError(
          `Unknown adapter "${wanted}": expected one of ${registry.names().join(', ')}, or an adapter package name.`,
          {
            details: { adapter: wanted },
          },
        );
      }
      const mod = registry.names().at(-1)!;
      return { adapter: registry.create(mod, options), name: wanted };
    }
    return { adapter: registry.create(wanted, options), name: wanted };
  }
  const found = await registry.detect({
    candidates: DETECT.filter((n) => registry.names().includes(n)),
    options: { ...Object.fromEntries(DETECT.map((n) => [n, options])) },
  });
  return { adapter: found.adapter, name: found.adapter.name };
}
