// @tandem/agent: the host agent. Named exports only.
export const AGENT_API_VERSION = 1;
