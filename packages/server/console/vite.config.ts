// The console's build: `npm run build:console -w @tandem/server` bundles it into console/dist,
// which the management server serves under /console/ (no build at run time).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const stub = fileURLToPath(new URL('./src/node-stub.ts', import.meta.url));
const netStub = fileURLToPath(new URL('./src/net-stub.ts', import.meta.url));

export default defineConfig({
  root: here,
  base: '/console/',
  // core's TypeScript sources (its `@tandem/source` condition): the console needs no prior tsc
  // build of @tandem/core, and bundles only the policy schema and its messages from it.
  resolve: {
    conditions: ['@tandem/source', 'module', 'browser', 'development|production'],
    alias: [
      // @tandem/core/policy's file loaders import these; the console never calls them.
      { find: /^node:(fs\/promises|fs|path|os|url|crypto)$/, replacement: stub },
      // core's CIDR and IP checks (the policy schema runs them as you type).
      { find: /^node:net$/, replacement: netStub },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
  },
});
