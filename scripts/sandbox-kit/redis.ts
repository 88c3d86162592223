// The sandbox's private redis-server: its own port and data dir under DIR.
import { join } from 'node:path';
import type { Layout } from './layout.ts';
import type { UnitSpec } from './meta.ts';

export function redisUnit(L: Layout, port: number): UnitSpec {
  return {
    // saved on shutdown, so queued jobs survive a restart like a real server's
    argv: ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--dir', L.redisData, '--save', '3600 1', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', '--protected-mode', 'yes'],
    ready: { tcp: port },
    stop_timeout_s: 20,
  };
}

export const redisLog = (L: Layout) => join(L.log, 'redis-server.log');
