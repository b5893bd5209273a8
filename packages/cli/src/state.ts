// The state directory moved to @tandem/agent, which shares it with the CLI (same files, same
// formats); the CLI keeps its old import path.
export { StateDir, type SessionRecord } from '@tandem/agent';
