import type { Command } from 'commander';
import type { CommandHost } from '../program.js';
import { registerValidate } from './validate.js';
import { registerDoctor } from './doctor.js';
import { registerUp } from './up.js';
import { registerLifecycle } from './lifecycle.js';
import { registerSnapshot } from './snapshot.js';
import { registerOverlay } from './overlay.js';
import { registerEvents } from './events.js';
import { registerPolicy } from './policy.js';
import { registerPack } from './pack.js';
import { registerPush } from './push.js';
import { registerPull } from './pull.js';
import { registerRepo } from './repo.js';
import { registerKeys } from './keys.js';
import { registerGuest } from './guest.js';
import { registerApps } from './apps.js';
import { registerOpen } from './open.js';
import { registerAgent } from './agent.js';
import { registerServer } from './server.js';
import { registerAdmin } from './admin.js';
import { registerLogin } from './login.js';
import { registerCheckin } from './checkin.js';

/** Registers every command. Each command lives in its own file under commands/. */
export function registerCommands(program: Command, host: CommandHost): void {
  registerValidate(program, host);
  registerDoctor(program, host);
  registerUp(program, host);
  registerLifecycle(program, host);
  registerSnapshot(program, host);
  registerOverlay(program, host);
  registerEvents(program, host);
  registerPolicy(program, host);
  registerPack(program, host);
  registerPush(program, host);
  registerPull(program, host);
  registerRepo(program, host);
  registerKeys(program, host);
  registerGuest(program, host);
  registerApps(program, host);
  registerOpen(program, host);
  registerAgent(program, host);
  registerServer(program, host);
  registerAdmin(program, host);
  registerLogin(program, host);
  registerCheckin(program, host);
}
