#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runAgent, type AgentOptions } from './agent.js';
import { parseTcpTarget } from './channel.js';
import { defaultUrlSocket, forwardUrl } from './forward-url.js';
import { AGENT_SOFTWARE, AGENT_VERSION } from './version.js';

const USAGE = `usage:
  tandem-guest-agent [--port NAME] [--device PATH | --tcp HOST:PORT] [--state-dir DIR]
                     [--apps-dir DIR]... [--allow-file FILE] [--url-socket PATH]
  tandem-guest-agent forward-url URL [--url-socket PATH]
  tandem-guest-agent --version`;

/** The command line. Exported for tests; the bin calls it with process.argv. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'forward-url') {
    const { values, positionals } = parseArgs({
      args: argv.slice(1),
      options: { 'url-socket': { type: 'string' } },
      allowPositionals: true,
    });
    const url = positionals[0];
    if (!url || positionals.length !== 1) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    const reply = await forwardUrl(values['url-socket'] ?? defaultUrlSocket(), url);
    process.stderr.write(`${reply.ok ? '' : 'tandem-guest-agent: '}${reply.message}\n`);
    return reply.ok ? 0 : 1;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        device: { type: 'string' },
        tcp: { type: 'string' },
        'state-dir': { type: 'string' },
        'apps-dir': { type: 'string', multiple: true },
        'allow-file': { type: 'string' },
        'url-socket': { type: 'string' },
        'no-url-socket': { type: 'boolean' },
        'sys-dir': { type: 'string' },
        'dev-dir': { type: 'string' },
        'proc-dir': { type: 'string' },
        'etc-dir': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`tandem-guest-agent: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${AGENT_SOFTWARE} ${AGENT_VERSION}\n`);
    return 0;
  }
  if (values.device && values.tcp) {
    process.stderr.write('tandem-guest-agent: --device and --tcp exclude each other\n');
    return 2;
  }
  const controller = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => controller.abort());
  const options: AgentOptions = {
    signal: controller.signal,
    ...(values.port ? { port: values.port } : {}),
    ...(values.device
      ? {
          target: {
            kind: await deviceKind(values.device),
            path: values.device,
          },
        }
      : {}),
    ...(values.tcp ? { target: parseTcpTarget(values.tcp) } : {}),
    ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
    ...(values['apps-dir'] ? { appsDirs: values['apps-dir'] } : {}),
    ...(values['allow-file'] ? { allowFile: values['allow-file'] } : {}),
    ...(values['no-url-socket']
      ? { urlSocket: false as const }
      : values['url-socket']
        ? { urlSocket: values['url-socket'] }
        : {}),
    ...(values['sys-dir'] ? { sysDir: values['sys-dir'] } : {}),
    ...(values['dev-dir'] ? { devDir: values['dev-dir'] } : {}),
    ...(values['proc-dir'] || values['etc-dir']
      ? { paths: { proc: values['proc-dir'] ?? '/proc', etc: values['etc-dir'] ?? '/etc' } }
      : {}),
  };
  try {
    await runAgent(options);
    return 0;
  } catch (err) {
    process.stderr.write(`tandem-guest-agent: ${(err as Error).message}\n`);
    return 1;
  }
}

async function deviceKind(path: string): Promise<'socket' | 'device'> {
  const { stat } = await import('node:fs/promises');
  const s = await stat(path).catch(() => undefined);
  return s?.isSocket() ? 'socket' : 'device';
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  import.meta.url === (await import('node:url')).pathToFileURL(await realpathOf(process.argv[1])).href;

async function realpathOf(p: string): Promise<string> {
  const { realpath } = await import('node:fs/promises');
  return realpath(p).catch(() => p);
}

if (invokedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
