// The local runner (npm start): loads the configuration, opens and recovers the ledger, serves the
// functions with @hono/node-server, runs background services, and shuts down gracefully.
// With no configuration at all it brings up the demo sandbox under ./var/demo and uses it.
import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Hono } from 'hono';
import { ConfigError, configPathFromArgs, loadConfig, type KeeperConfig } from './config.ts';
import type { AppEnv, Bindings } from './bindings.ts';
import { createJobs, type JobsRuntime } from './jobs.ts';
import { bootHooks, startServices } from './boot.ts';
import { createApp } from '../functions/app.ts';
import { ledgerPath, openLedger, type Ledger } from '../state/ledger.ts';
import { recoverAtStart } from './recover.ts';
import { setTempStateDir } from './temp.ts';
import { phpborgDb } from '../state/phpborg-db.ts';
import { prepareSetupToken } from '../functions/setup/state.ts';

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

/** Builds the runner in-process: ledger opened and recovered, bindings, app. Does not listen. */
export async function createRunner(config: KeeperConfig, configPath: string, opts: RunnerOptions = {}): Promise<Runner> {
  const log = opts.log ?? ((l: string) => console.error(`[keeper] ${l}`));
  const now = opts.now ?? (() => new Date());
  setTempStateDir(config.paths.state);
  const ledger = openLedger(ledgerPath(config.paths.state));
  await recoverAtStart(config, ledger, log, now());

  const jobs = createJobs({ config, configPath, ledger, now });
  const phpborg = phpborgDb(config);
  const bindings: Bindings = { config, configPath, ledger, phpborg, jobs, clock: { now } };
  await bootHooks({ config, configPath, ledger });
  const stops = opts.services === false ? [] : await startServices(bindings);
  const app = createApp();

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

// The demo sandbox (scripts/sandbox-kit), loaded only when there is no configuration.
const loadSandbox = () => import('../scripts/sandbox-kit/index.ts');

async function main(): Promise<void> {
  const host = process.env.KEEPER_HOST || undefined;
  const portEnv = process.env.KEEPER_PORT;
  if (portEnv !== undefined && !/^\d{1,5}$/.test(portEnv)) {
    console.error(`KEEPER_PORT: got ${JSON.stringify(portEnv)}; expected a port number (0 = any free port)`);
    process.exit(2);
  }
  let configPath = configPathFromArgs(process.argv.slice(2));
  let demoDir: string | null = null;
  if (!configPath) {
    demoDir = resolve(process.env.KEEPER_DEMO_DIR || 'var/demo');
    console.error(`[keeper] no configuration (--config FILE or KEEPER_CONFIG): bringing up the demo sandbox in ${demoDir} …`);
    const info = await (await loadSandbox()).upSandbox(demoDir);
    configPath = info.config;
  }
  configPath = resolve(configPath);
  let config: KeeperConfig;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    console.error(e instanceof ConfigError ? e.message : `cannot load the configuration: ${(e as Error).message}`);
    process.exit(2);
  }
  const runner = await createRunner(config, configPath, {
    graceMs: process.env.KEEPER_SHUTDOWN_GRACE_MS ? Number(process.env.KEEPER_SHUTDOWN_GRACE_MS) : undefined,
  });
  // the demo listens where the README says (8787), not on the sandbox's own free port
  const port = portEnv !== undefined ? Number(portEnv) : demoDir ? 8787 : config.server.port;
  const serving = await startServer(runner, { host: host ?? config.server.host, port });
  console.log(`phpborg-keeper listening on ${serving.url}  (config ${configPath})`);
  // no phpBorg here yet: the setup wizard's one-time token (functions/setup/state.ts)
  const setup = await prepareSetupToken(config).catch((e: Error) => (console.error(`[keeper] setup token: ${e.message}`), null));
  if (setup) console.log(`phpBorg is not installed here (${setup.reason}).\nsetup token (also in ${setup.file}):\nSETUP_TOKEN=${setup.token}`);
  if (demoDir) {
    const token = await (await loadSandbox()).sandboxToken(demoDir, { expiresIn: 12 * 3600 });
    console.log(`demo admin token (valid 12 h):\nTOKEN=${token}`);
    console.log(`try:  curl -H "Authorization: Bearer $TOKEN" ${serving.url}/api/system/services`);
  }

  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`[keeper] ${sig}: stopping (waiting for running jobs) …`);
    try {
      await serving.close();
      if (demoDir && process.env.KEEPER_DEMO_KEEP !== '1') await (await loadSandbox()).downSandbox(demoDir);
    } catch (e) {
      console.error(`[keeper] shutdown: ${(e as Error).message}`);
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(`[keeper] cannot start: ${(e as Error).stack ?? e}`);
    process.exit(1);
  });
}
