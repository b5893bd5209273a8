import { cpus, totalmem, hostname, platform, release } from 'node:os';
import type { Command } from 'commander';
import type { CommandHost } from '../program.js';
import { cliRegistry, parseAdapterOptions } from '../adapters.js';
import { StateDir } from '../state.js';
import { ExitCode } from '../exit-codes.js';
import { checkNetworkModes, gatherNetworkFacts } from './doctor-network.js';

/** `tandem doctor` */
export function registerDoctor(program: Command, host: CommandHost): void {
  program
    .command('doctor')
    .description(
      'check every adapter on this host: usable or why not, hypervisor version, host RAM and CPUs, and which network modes can work',
    )
    .option('--adapter-option <key=value>', 'option passed to every adapter (repeatable)', collect, [])
    .action(
      host.run(async (ctx, opts: { adapterOption: string[] }) => {
        const state = new StateDir(ctx.stateDir);
        const registry = await cliRegistry(state);
        const options = parseAdapterOptions(opts.adapterOption);
        const reports = await registry.probeAll(Object.fromEntries(registry.names().map((n) => [n, options])));
        const hostFacts = {
          hostname: hostname(),
          os: `${platform()} ${release()}`,
          node: process.version,
          memoryMiB: Math.floor(totalmem() / 1024 / 1024),
          cpus: cpus().length,
          stateDir: ctx.stateDir,
        };
        // Network modes are libvirt's to check here (dnsmasq, its networks, the host's bridges).
        const uri = options['uri'] ?? process.env['TANDEM_LIBVIRT_URI'] ?? 'qemu:///system';
        const networks = registry.names().includes('libvirt')
          ? checkNetworkModes(
              await gatherNetworkFacts({
                uri,
                ...(options['natNetwork'] ? { natNetwork: options['natNetwork'] } : {}),
                ...(options['hostOnlyNetwork'] ? { hostOnlyNetwork: options['hostOnlyNetwork'] } : {}),
              }),
            )
          : [];
        const real = reports.filter((r) => r.adapter !== 'mock');
        const usable = real.filter((r) => r.result.usable);
        const lines = [
          `host: ${hostFacts.hostname} (${hostFacts.os}), ${hostFacts.memoryMiB} MiB RAM, ${hostFacts.cpus} CPUs, Node.js ${hostFacts.node}`,
          `state: ${hostFacts.stateDir}`,
          '',
          ...reports.flatMap((r) =>
            r.result.usable
              ? [
                  `✔ ${r.adapter}: usable, ${r.result.hypervisorVersion}; host ${r.result.host.memoryMiB} MiB, ${r.result.host.cpus} CPUs`,
                  ...Object.entries(r.result.details ?? {}).map(([k, v]) => `    ${k}: ${v}`),
                  ...(r.result.warnings ?? []).map((w) => `    warning: ${w}`),
                ]
              : [`✘ ${r.adapter}: ${r.result.reason}`, ...(r.result.fix ? [`    fix: ${r.result.fix}`] : [])],
          ),
          ...(networks.length > 0
            ? [
                '',
                `network modes (libvirt at ${uri}):`,
                ...networks.flatMap((n) => [
                  `${n.works ? '✔' : '✘'} ${n.mode}: ${n.works ? 'can work' : 'cannot work'}: ${n.why}`,
                  ...(n.fix ? [`    fix: ${n.fix}`] : []),
                ]),
              ]
            : []),
          '',
          usable.length > 0
            ? `${usable.length} real hypervisor adapter(s) usable: ${usable.map((r) => r.adapter).join(', ')}`
            : 'no real hypervisor is usable here; the mock adapter (--adapter mock) always is',
        ];
        ctx.result(
          {
            host: hostFacts,
            adapters: reports.map((r) => r.result),
            ...(networks.length > 0 ? { networks: { adapter: 'libvirt', uri, modes: networks } } : {}),
          },
          lines,
        );
        return usable.length > 0 ? ExitCode.ok : ExitCode.unsupported;
      }),
    );
}

/** Commander helper for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
