export { DesktopMonitor } from './monitor.js';
export type {
  ActivitySource,
  DesktopBusStatus,
  DesktopEvents,
  DesktopEventSource,
  DesktopMonitorOptions,
  LoginSessionInfo,
  NotificationUrgency,
} from './monitor.js';
export { systemdInhibitor } from './inhibitor.js';
export type { SleepInhibitor, SystemdInhibitorOptions } from './inhibitor.js';
