import { it } from 'vitest';
import { virtualBoxConformance } from './conformance.test-helper.js';

// VirtualBox 6.1, the oldest supported version.
virtualBoxConformance(it, '6.1');
