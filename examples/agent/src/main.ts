import { runAgentExample } from './agent-example.js';

const { lines } = await runAgentExample();
for (const line of lines) console.log(line);
