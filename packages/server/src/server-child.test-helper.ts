// A management server process for the scale-out test (not shipped): serves the server
// directory in argv[2] on a free loopback port, prints {"url": ...} as one line, stops on SIGTERM.
import { openDeployment } from './deployment.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: server-child DIR');
const deployment = await openDeployment(dir);
const { url } = await deployment.serve({ host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ url, pid: process.pid }) + '\n');
process.once('SIGTERM', () => {
  void deployment.close().then(() => process.exit(0));
});
