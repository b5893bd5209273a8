import { runPolicyExample } from './policy-example.js';

console.log('Tandem policy engine example\n');
const { tests } = await runPolicyExample();
if (tests.some((t) => !t.passed)) process.exitCode = 10;
