import { it } from 'vitest';
import { virtualBoxConformance } from './conformance.test-helper.js';

// VirtualBox 7.1, the newest supported version; 7.0's output quirks are covered by the parser and adapter tests.
virtualBoxConformance(it, '7.1');
