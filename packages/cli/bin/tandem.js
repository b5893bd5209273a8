#!/usr/bin/env node
// The `tandem` executable. A committed launcher (rather than dist/bin.js itself) so npm can link
// it before the TypeScript is built.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  process.stderr.write(
    `tandem: Node.js ${process.versions.node} is too old; Tandem needs Node.js 22.13+ or 24.\n` +
      '  Inside the Tandem repository, run it through npm (npx tandem, npm run ...) to use the bundled Node.js 24.\n',
  );
  process.exit(1);
}
try {
  await import('../dist/bin.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin.js')) {
    process.stderr.write('tandem: the CLI is not built yet; run `npm run build` first.\n');
    process.exit(1);
  }
  throw err;
}
