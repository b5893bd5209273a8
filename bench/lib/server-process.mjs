// One management server process for bench/server.mjs: serves the server directory in argv[2]
// on a free loopback port (plain HTTP), prints {"url"} as one line, stops on SIGTERM.
import { openDeployment } from '@tandem/server';

const deployment = await openDeployment(process.argv[2]);
const { url } = await deployment.serve({ host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ url }) + '\n');
process.once('SIGTERM', () => void deployment.close().then(() => process.exit(0)));
