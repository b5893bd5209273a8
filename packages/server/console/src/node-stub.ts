// Stands in for the Node.js modules that @tandem/core/policy's file loaders import; the console
// validates text it holds and never reaches them.
function unavailable(): never {
  throw new Error('Not available in the browser.');
}
export const readFile = unavailable;
export const readdir = unavailable;
export const stat = unavailable;
export const dirname = (p: string): string => p.replace(/\/[^/]*$/, '');
export const resolve = (...p: string[]): string => p.join('/');
export const join = (...p: string[]): string => p.join('/');
export const extname = (p: string): string => /\.[^./]*$/.exec(p)?.[0] ?? '';
export const basename = (p: string): string => p.replace(/^.*\//, '');
export const fileURLToPath = (u: string): string => u;
export const tmpdir = (): string => '/tmp';
export const homedir = (): string => '/';
export const randomUUID = (): string => globalThis.crypto.randomUUID();
export default {};
