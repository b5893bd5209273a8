// The process-level guard for the rejections postgres.js leaves without a handler.
//
// postgres.js (3.4.9) fetches the array types on every new connection in a promise that nothing
// awaits (connection.js: `return fetchArrayTypes()` from ReadyForQuery). When that connection is
// killed during the fetch, the promise rejects with `write CONNECTION_CLOSED` or `read
// ECONNRESET` and, by Node's default, the process exits. The store replaces its pool after each
// lost connection, so every kill is followed by such fetches. No request is waiting on that
// query (the request's own query is retried on the reconnected socket or rejected to it), so the
// loss is reported and the process goes on. Every other unhandled rejection ends the process as
// it would without this guard.
import { isConnectionLoss } from './postgres-rows.js';

type Report = (err: Error) => void;

const reporters = new Set<Report>();

function onUnhandledRejection(reason: unknown): void {
  const [report] = reporters;
  if (report && reason instanceof Error && isConnectionLoss(reason)) {
    report(reason);
    return;
  }
  // Not a lost connection: left to the other listeners if there are any, else fatal as by default.
  if (process.listenerCount('unhandledRejection') === 1) throw reason;
}

/**
 * Reports a lost PostgreSQL connection that postgres.js rejected with no one awaiting it, instead
 * of letting it end the process, while the returned function has not been called.
 */
export function guardDriverRejections(report: Report): () => void {
  if (reporters.size === 0) process.on('unhandledRejection', onUnhandledRejection);
  reporters.add(report);
  return () => {
    if (!reporters.delete(report)) return;
    if (reporters.size === 0) process.off('unhandledRejection', onUnhandledRejection);
  };
}
