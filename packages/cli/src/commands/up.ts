import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  NoAdapterError,
  SessionManager,
  TandemError,
  describeVmChanges,
  loadWorkspaceFile,
  parseDuration,
  releaseDiskKeys,
  vmNameFor,
} from '@tandem/core';
import type { CommandHost } from '../program.js';
import { openAdapter, parseAdapterOptions } from '../adapters.js';
import { cliEvents, policyFor, recordAfter } from '../runtime.js';
import { openedRecord } from '@tandem/agent';
import { StateDir, type SessionRecord } from '../state.js';
import { collect } from './doctor.js';
import { envelopeKeyProvider } from './keys-files.js';
import { throughAgent } from '../agent-client.js';
import { guestSignInCredentials, signInAfterStart, type UpSignInOutcome } from './up-sign-in.js';

/** `tandem up` of a spec.guestSignIn workspace with no terminal to ask on and no --password-stdin. */
const NO_TERMINAL_SIGN_IN: UpSignInOutcome = {
  status: 'skipped',
  message:
    'no terminal to ask for the password on; give it with --password-stdin, or sign in later with tandem guest sign-in --password-stdin',
};

/** `tandem up FILE [--adapter NAME]` */
export function registerUp(program: Command, host: CommandHost): void {
  program
    .command('up')
    .description('open a session for a workspace file: define its VM (memory sized by this host) and start it')
    .argument('<file>', 'workspace file (YAML or JSON)')
    .option(
      '-a, --adapter <name>',
      'libvirt, virtualbox, hyperv, mock, or an adapter package name (default: $TANDEM_ADAPTER, else detect)',
    )
    .option('--adapter-option <key=value>', 'adapter option, e.g. uri=qemu:///system (repeatable)', collect, [])
    .option(
      '--layer <file>',
      'a policy layer file (kind: PolicyLayer) above the workspace file; repeat for several (default: the layers of the last up)',
      collect,
      [],
    )
    .option('--no-start', 'define the VM and record the session without starting it')
    .option(
      '--take-over',
      "through the agent: if the VM holds another host user's session, shut it down (that session is lost) and start it for you",
    )
    .option(
      '--password-stdin',
      'spec.guestSignIn: read the password you signed in to Tandem with from stdin (else it is asked for when no agent runs)',
    )
    .option('--user <name>', 'spec.guestSignIn: who signs in to the guest (default: the user of tandem login)')
    .option(
      '--guest-timeout <duration>',
      "spec.guestSignIn: how long to wait for the guest agent's hello (ISO 8601)",
      'PT10M',
    )
    .option(
      '--envelope <file>',
      'the key envelope of an encrypted workspace (default: <state-dir>/envelopes/<image>.envelope)',
    )
    .action(
      host.run(
        async (
          ctx,
          file: string,
          opts: {
            adapter?: string;
            adapterOption: string[];
            layer: string[];
            start: boolean;
            envelope?: string;
            takeOver?: boolean;
            passwordStdin?: boolean;
            user?: string;
            guestTimeout: string;
          },
        ) => {
          const loaded = await loadWorkspaceFile(file);
          const name = loaded.workspace.metadata.name;
          const signIn = loaded.workspace.spec.guestSignIn && opts.start;
          const guestTimeoutMs = parseDuration(opts.guestTimeout);
          // Through the agent when one runs (it then owns the session and releases an encrypted
          // workspace's disk key itself, from the state directory's envelope, in memory only);
          // an envelope file given here is read here.
          const encrypted = loaded.workspace.spec.image.encryption !== undefined;
          const viaAgent = await throughAgent(
            ctx,
            async (agent) => {
              // The agent signs the user in with what tandem login handed it; --password-stdin
              // hands it (again) first.
              if (signIn && opts.passwordStdin) {
                const c = await guestSignInCredentials(ctx, opts);
                try {
                  await agent.call('credentials.hold', {
                    user: c.user,
                    password: c.password.toString('utf8'),
                    source: 'up',
                  });
                } finally {
                  c.password.fill(0);
                }
              }
              return agent.call('up', {
                file: resolve(file),
                ...(opts.adapter ? { adapter: opts.adapter } : {}),
                ...(opts.adapterOption.length ? { adapterOptions: parseAdapterOptions(opts.adapterOption) } : {}),
                ...(opts.layer.length ? { layers: opts.layer.map((l) => resolve(l)) } : {}),
                start: opts.start,
                ...(opts.takeOver ? { takeOver: true } : {}),
              });
            },
            async () => undefined,
            encrypted && opts.envelope ? { inProcessBecause: `--envelope is read in-process` } : {},
          );
          if (viaAgent) {
            const pending = viaAgent.pendingUpdate;
            ctx.result(
              {
                session: viaAgent.session,
                workspace: name,
                version: viaAgent.version,
                vm: viaAgent.vm,
                adapter: viaAgent.adapter,
                state: viaAgent.state,
                ...(pending ? { pendingUpdate: pending } : {}),
              },
              [
                `session ${viaAgent.session}: workspace ${name} on ${viaAgent.adapter}, VM ${viaAgent.vm}, ${viaAgent.state} (through the agent)`,
                ...(pending
                  ? [
                      `version ${pending.toVersion} waits for the next start (stop the session, then tandem up again): ${describeVmChanges(pending.changes)}`,
                    ]
                  : []),
              ],
            );
            return;
          }
          const state = new StateDir(ctx.stateDir);
          const vm = vmNameFor(loaded.workspace);
          const existing = state.find(name);
          if (existing && existing.adapter.name !== (opts.adapter ?? existing.adapter.name)) {
            throw new TandemError(
              `Workspace "${name}" already has a session on the ${existing.adapter.name} adapter; run "tandem down ${name}" first to move it to ${opts.adapter}.`,
              { code: 'TANDEM_CONFLICT', fault: 'user', details: { workspace: name, adapter: existing.adapter.name } },
            );
          }
          const layers = opts.layer.length > 0 ? opts.layer.map((l) => resolve(l)) : (existing?.layers ?? []);
          const adapterOptions =
            existing && !opts.adapterOption.length ? existing.adapter.options : parseAdapterOptions(opts.adapterOption);
          // An encrypted workspace: the envelope is checked and the disk key released (in memory
          // only) before any adapter is opened, so a refusal starts nothing.
          using keys = opts.start
            ? await releaseDiskKeys(loaded, envelopeKeyProvider(ctx.stateDir, opts.envelope))
            : undefined;
          // Single sign-on without an agent: the password is asked for once, before anything starts.
          // With no terminal to ask on and no --password-stdin (a script), the workspace starts
          // and the sign-in is left to tandem guest sign-in.
          const canAsk = opts.passwordStdin === true || process.stdin.isTTY === true;
          const credentials = signIn && canAsk ? await guestSignInCredentials(ctx, opts) : undefined;
          let signedIn: UpSignInOutcome | undefined = signIn && !canAsk ? NO_TERMINAL_SIGN_IN : undefined;
          try {
            await state.withVmLock(vm, async () => {
              let opened;
              try {
                opened = await openAdapter(state, opts.adapter ?? existing?.adapter.name, adapterOptions);
              } catch (err) {
                if (err instanceof NoAdapterError || TandemError.is(err, 'TANDEM_NO_ADAPTER')) {
                  throw new NoAdapterError(
                    `${(err as Error).message}\nTo try Tandem without a hypervisor, use --adapter mock.`,
                    { cause: err },
                  );
                }
                throw err;
              }
              const { adapter } = opened;
              const { events, close } = cliEvents(ctx, state);
              try {
                const manager = new SessionManager({ adapter, events });
                const session = await manager.open(loaded, {
                  vmName: vm,
                  policy: await policyFor(loaded, layers),
                  ...(existing ? { sessionId: existing.id, locked: existing.state === 'locked' } : {}),
                  ...(existing?.vmSpec ? { definedSpec: existing.vmSpec } : {}),
                  ...(keys ? { diskKeys: keys.diskKeys } : {}),
                });
                let record: SessionRecord = openedRecord({
                  session,
                  loaded,
                  workspace: name,
                  vm,
                  adapter: { name: opened.name, options: adapterOptions },
                  layers,
                  existing,
                });
                state.save(record);
                try {
                  if (opts.start && session.can('start')) await session.start();
                } finally {
                  record = recordAfter(record, session);
                  state.save(record);
                }
                if (credentials && session.state === 'running')
                  signedIn = await signInAfterStart({
                    adapter,
                    vm,
                    workspace: loaded.workspace,
                    credentials,
                    events,
                    context: { workspace: name, session: session.id },
                    timeoutMs: guestTimeoutMs,
                  });
                const pending = record.pendingUpdate;
                ctx.result(
                  {
                    session: session.id,
                    workspace: name,
                    version: loaded.workspace.metadata.version,
                    vm,
                    adapter: opened.name,
                    state: session.state,
                    ...(pending ? { pendingUpdate: pending } : {}),
                    ...(signedIn ? { guestSignIn: signedIn } : {}),
                  },
                  [
                    `session ${session.id}: workspace ${name} on ${opened.name}, VM ${vm}, ${session.state}`,
                    ...(signedIn?.status === 'signed-in'
                      ? [`signed in to the guest as ${signedIn.result.user} (${signedIn.result.method})`]
                      : signedIn
                        ? [`not signed in to the guest: ${signedIn.message}`]
                        : []),
                    ...(pending
                      ? [
                          `version ${pending.toVersion} waits for the next start (stop the session, then tandem up again): ${describeVmChanges(pending.changes)}`,
                        ]
                      : []),
                  ],
                );
                await session.close();
              } finally {
                close();
                await adapter.close?.();
              }
            });
          } finally {
            credentials?.password.fill(0);
          }
          return signedIn?.status === 'failed' ? 1 : undefined;
        },
      ),
    );
}
