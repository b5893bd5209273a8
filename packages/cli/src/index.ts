// @tandem/cli: the `tandem` command, also usable in-process.
export { runCli, buildProgram } from './program.js';
export type { CommandHost } from './program.js';
export { ExitCode, exitCodeFor } from './exit-codes.js';
export { resolveStateDir, createContext } from './context.js';
export type { CliContext, GlobalOptions } from './context.js';
