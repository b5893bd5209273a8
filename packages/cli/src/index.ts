// @tandem/cli: the `tandem` command, also usable in-process.
export { runCli, buildProgram } from './program.js';
export type { CommandHost } from './program.js';
export { ExitCode, exitCodeFor } from './exit-codes.js';
export { resolveStateDir, createContext } from './context.js';
export type { CliContext, GlobalOptions } from './context.js';
// Sessions as the command records them, so a tray tool and `tandem status` see the same ones.
export { StateDir } from './state.js';
export type { SessionRecord } from './state.js';
export { withSession, describeEvent } from './runtime.js';
