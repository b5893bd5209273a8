// @tandem/server/store/testing: the store conformance suite, for other ServerStore implementations.
export { sampleDevice, sampleEvent, sampleEvents, storeConformanceSuite, until } from './conformance.js';
export type { StoreConformanceIt, StoreConformanceOptions, StoreFactory, StoreSubject } from './conformance.js';
