import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPublishingDemo } from './publishing.js';

const xdgDir = await mkdtemp(join(tmpdir(), 'tandem-publishing-'));
try {
  await runPublishingDemo({ xdgDir, log: (line) => console.log(line) });
} finally {
  await rm(xdgDir, { recursive: true, force: true });
}
