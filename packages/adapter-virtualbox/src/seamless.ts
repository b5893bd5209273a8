import {
  InvalidInputError,
  UnsupportedCapabilityError,
  assertArgument,
  type LaunchHandle,
  type LaunchRequest,
  type SeamlessOps,
} from '@tandem/core';
import { DENY_ALL, vboxPolicyCommands } from '@tandem/core/publishing';
import { checkVmName, expectState, findMachine, type VBoxContext } from './machine.js';
import type { VBoxVersion } from './parse.js';

/**
 * The data-transfer policy's `controlvm` commands for this VirtualBox: `vboxPolicyCommands()`
 * is written for 7.x; 6.1 takes `clipboard <mode>` without the `mode` word and has no clipboard
 * file transfers in its release builds (so there is nothing to switch off).
 */
export function vboxPolicyCommandsFor(
  vm: string,
  request: LaunchRequest,
  version: VBoxVersion | undefined,
): string[][] {
  const { commands } = vboxPolicyCommands(vm, request.transfer ?? DENY_ALL);
  if (!version || version.major >= 7) return commands;
  return commands.flatMap((c) => {
    if (c[2] !== 'clipboard') return [c];
    if (c[3] === 'mode') return [[c[0]!, c[1]!, 'clipboard', c[4]!]];
    return [];
  });
}

/** Checks a launch request before anything runs. */
export function checkLaunch(request: LaunchRequest): void {
  assertArgument(request.command, 'app command');
  if (request.command.trim() === '')
    throw new InvalidInputError('The app command is empty; give the program to start in the guest.', {
      details: { what: 'command' },
    });
  (request.args ?? []).forEach((a, i) => assertArgument(a, `app argument ${i + 1}`));
  if (request.workingDirectory !== undefined) assertArgument(request.workingDirectory, 'working directory');
  const c = request.credentials;
  if (c) {
    assertArgument(c.username, 'guest user name');
    if (c.domain !== undefined) assertArgument(c.domain, 'guest domain');
    if (c.password !== undefined) {
      assertArgument(c.password, 'guest password');
      if (/[\r\n]/.test(c.password)) {
        throw new InvalidInputError(
          'The guest password contains a line break; VirtualBox reads one line of password.',
          { details: { what: 'password' } },
        );
      }
    }
  }
}

/**
 * Seamless windows through VirtualBox itself: `GUI/Seamless` extradata puts the VM window in
 * seamless mode (full-desktop mode turns it off and `GUI/Fullscreen` on), and
 * `guestcontrol run` starts the published app in the guest (Guest Additions needed). Before
 * that, the launch's data-transfer policy is applied with `controlvm` (clipboard and drag and
 * drop by direction, clipboard file transfers, audio in and out; see `vboxPolicyCommands()`).
 * The password for the guest account goes to VBoxManage on stdin (`--passwordfile=stdin`).
 */
export class VBoxSeamless implements SeamlessOps {
  constructor(
    readonly ctx: VBoxContext,
    readonly version: () => Promise<VBoxVersion | undefined>,
  ) {}

  async launch(vm: string, request: LaunchRequest): Promise<LaunchHandle> {
    checkVmName(vm);
    checkLaunch(request);
    if (request.transport && request.transport !== 'vbox-seamless') {
      throw new UnsupportedCapabilityError(
        `The VirtualBox adapter launches apps with vbox-seamless, not ${request.transport}.`,
        {
          details: { transport: request.transport },
        },
      );
    }
    const credentials = request.credentials;
    if (!credentials) {
      throw new InvalidInputError(
        'VirtualBox guest control needs the guest account: give credentials.username (and password).',
        {
          details: { what: 'credentials' },
        },
      );
    }
    return this.ctx.serial.run(vm, async () => {
      const m = await findMachine(this.ctx, vm);
      expectState(m, ['running'], 'launch an app in');
      const { cli } = this.ctx;
      // The policy first: nothing crosses before the app's window exists (absent: all denied).
      for (const command of vboxPolicyCommandsFor(m.uuid, request, await this.version())) {
        await cli.run(command, `Apply the data-transfer policy to "${vm}"`);
      }
      const seamless = request.mode === 'seamless';
      await cli.run(
        ['setextradata', m.uuid, 'GUI/Seamless', seamless ? 'on' : 'off'],
        `Set the display mode of "${vm}"`,
      );
      await cli.run(
        ['setextradata', m.uuid, 'GUI/Fullscreen', seamless ? 'off' : 'on'],
        `Set the display mode of "${vm}"`,
      );
      const args = ['guestcontrol', m.uuid, 'run', `--exe=${request.command}`, `--username=${credentials.username}`];
      if (credentials.domain !== undefined) args.push(`--domain=${credentials.domain}`);
      if (credentials.password !== undefined) args.push('--passwordfile=stdin');
      if (request.workingDirectory !== undefined) {
        const v = await this.version();
        if (v && v.major >= 7) args.push(`--cwd=${request.workingDirectory}`);
        else
          this.ctx.warn(
            `VirtualBox ${v?.raw ?? '6.1'} cannot set a working directory for guest programs; ignoring ${request.workingDirectory}.`,
          );
      }
      args.push('--', request.command, ...(request.args ?? []));
      const running = await cli.start(
        args,
        credentials.password !== undefined ? { input: `${credentials.password}\n` } : {},
      );
      const exited = running.result.then(
        (r) => r.exitCode,
        () => null,
      );
      return {
        transport: 'vbox-seamless' as const,
        argv: running.argv,
        ...(running.pid !== undefined ? { pid: running.pid } : {}),
        exited,
        close: async () => {
          running.kill();
          await exited;
        },
      };
    });
  }
}
