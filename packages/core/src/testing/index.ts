// @tandem/core/testing: the mock adapter, the adapter conformance suite and test helpers.
export { integrationGate } from './integration.js';
export type { IntegrationGate } from './integration.js';
