import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEncryptionDemo } from './demo.js';

const workDir = await mkdtemp(join(tmpdir(), 'tandem-encryption-'));
await runEncryptionDemo({ workDir, log: (line) => console.log(line) });
