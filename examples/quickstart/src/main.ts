import { runQuickstart } from './quickstart.js';

console.log('Tandem quickstart (mock adapter)\n');
await runQuickstart();
