// The local runner: opens and recovers the ledger, starts the jobs runtime with the operations it is
// handed, serves the app with @hono/node-server, runs background services, and shuts down
// gracefully. The entry point (scripts/runner.ts) wires it and reads the command line.
import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';
import type { KeeperConfig } from './config.ts';
import type { AppEnv, Bindings } from './bindings.ts';
import type { JobsRuntime } from './jobs.ts';
import { startJobs, startServices, type Operations } from './boot.ts';
import { ledgerPath, openLedger, type Ledger } from '../state/ledger.ts';
import { phpborgDb } from './phpborg-db.ts';
import { setTempStateDir } from './temp.ts';

/** The operations and the HTTP app that serves them. */
export interface RunnerOperations extends Operations {
  app(): Hono<AppEnv>;
}

export interface RunnerOptions {
  now?: () => Date;
  /** ms to wait for running helpers at shutdown before marking their jobs interrupted */
  graceMs?: number;
  /** skip background services (scheduler) — tests that drive them themselves */
  services?: boolean;
  log?: (line: string) => void;
}

export interface Runner {
  app: Hono<AppEnv>;
  bindings: Bindings;
  jobs: JobsRuntime;
  ledger: Ledger;
  /** app.fetch with the runner's bindings: `runner.request('/api/health')` in tests */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** stops background services, waits for helpers (bounded), closes the ledger and the DB pool */
  close(): Promise<void>;
}

const RECOVERY_WATCH_MS = 3000;

/** Builds the runner in-process: ledger opened and recovered, bindings, app. Does not listen. */
export async function openRunner(ops: RunnerOperations, config: KeeperConfig, configPath: string, opts: RunnerOptions = {}): Promise<Runner> {
  const log = opts.log ?? ((l: string) => console.error(`[keeper] ${l}`));
  const now = opts.now ?? (() => new Date());
  setTempStateDir(config.paths.state);
  const ledger = openLedger(ledgerPath(config.paths.state));
  const { jobs } = await startJobs(ops, { config, configPath, ledger }, { now, log });
  const phpborg = phpborgDb(config);
  const bindings: Bindings = { config, configPath, ledger, phpborg, jobs, clock: { now } };
  const stops = opts.services === false ? [] : await startServices(bindings);
  // a helper this runner no longer follows (it outlived an earlier runner) may die later: look again
  const watch = setInterval(() => jobs.recoverOrphans(), RECOVERY_WATCH_MS);
  watch.unref();
  stops.push(() => clearInterval(watch));
  const app = ops.app();

  let closed = false;
  return {
    app,
    bindings,
    jobs,
    ledger,
    request: async (path, init) => app.request(path, init, bindings),
    async close() {
      if (closed) return;
      closed = true;
      for (const s of stops) await Promise.resolve(s()).catch((e: Error) => log(`stopping a service failed: ${e.message}`));
      const r = await jobs.shutdown(opts.graceMs ?? 30_000);
      if (r.interrupted.length) log(`left ${r.interrupted.length} helper(s) running; their jobs are marked interrupted: ${r.interrupted.join(', ')}`);
      await phpborg.close();
      ledger.close();
    },
  };
}

export interface Serving {
  url: string;
  port: number;
  server: ServerType;
  /** stop accepting, finish the runner (helpers bounded), close open streams */
  close(): Promise<void>;
}

/** Listens on host:port (port 0 = any free port) and resolves once listening. */
export function startServer(runner: Runner, opts: { host?: string; port?: number } = {}): Promise<Serving> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolveServing, reject) => {
    const server = serve({ fetch: (req) => runner.app.fetch(req, runner.bindings), hostname: host, port: opts.port ?? 8787 }, (info: AddressInfo) => {
      const h = host.includes(':') ? `[${host}]` : host;
      resolveServing({
        url: `http://${h}:${info.port}`,
        port: info.port,
        server,
        async close() {
          const http = server as Server;
          const stopped = new Promise<void>((r) => http.close(() => r()));
          await runner.close();
          http.closeAllConnections?.(); // SSE streams of finished jobs
          await stopped;
        },
      });
    });
    (server as Server).once('error', reject);
  });
}
