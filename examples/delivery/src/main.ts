import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDeliveryDemo } from './demo.js';

const workDir = await mkdtemp(join(tmpdir(), 'tandem-delivery-'));
await runDeliveryDemo({ workDir, log: (line) => console.log(line) });
