// npm start: the runner's entry point and composition root. Wires the operations (functions/) into
// the platform (runtime/), loads the configuration — with none at all it brings up the demo sandbox
// under ./var/demo and uses it — then serves until SIGTERM or SIGINT.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, configPathFromArgs, loadConfig, type KeeperConfig } from '../runtime/config.ts';
import { openRunner, startServer, type Runner, type RunnerOptions } from '../runtime/runner.ts';
import { createApp } from '../functions/app.ts';
import { operations } from '../functions/operations.ts';
import { prepareSetupToken } from '../functions/setup/state.ts';
import { errorMessage } from '../runtime/error-message.ts';
import { acquireInstanceLock, InstanceLockedError, lockOwner, type InstanceLock } from '../runtime/instance-lock.ts';

/** The keeper's runner, fully wired: what npm start serves and what tests drive in-process. */
export function createRunner(config: KeeperConfig, configPath: string, opts: RunnerOptions = {}): Promise<Runner> {
  return openRunner({ ...operations, app: createApp }, config, configPath, opts);
}

// The demo sandbox (./sandbox-kit), loaded only when there is no configuration.
const loadSandbox = () => import('./sandbox-kit/index.ts');

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
    const sandbox = await loadSandbox();
    // refuse before touching the demo: restarting its units under a running keeper would disturb it
    const owner = lockOwner(sandbox.layout(demoDir).state);
    if (owner) refuse(new InstanceLockedError(owner));
    console.error(`[keeper] no configuration (--config FILE or KEEPER_CONFIG): bringing up the demo sandbox in ${demoDir} …`);
    const info = await sandbox.upSandbox(demoDir);
    configPath = info.config;
  }
  configPath = resolve(configPath);
  let config: KeeperConfig;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    console.error(e instanceof ConfigError ? e.message : `cannot load the configuration: ${errorMessage(e)}`);
    process.exit(2);
  }
  // the demo listens where the README says (8787), not on the sandbox's own free port
  const port = portEnv !== undefined ? Number(portEnv) : demoDir ? 8787 : config.server.port;
  let lock: InstanceLock;
  try {
    lock = acquireInstanceLock(config.paths.state, port || null);
  } catch (e) {
    if (e instanceof InstanceLockedError) refuse(e);
    throw e;
  }
  const runner = await createRunner(config, configPath, {
    graceMs: process.env.KEEPER_SHUTDOWN_GRACE_MS ? Number(process.env.KEEPER_SHUTDOWN_GRACE_MS) : undefined,
  });
  let serving: Awaited<ReturnType<typeof startServer>>;
  try {
    serving = await startServer(runner, { host: host ?? config.server.host, port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    await runner.close().catch(() => {});
    if (demoDir && process.env.KEEPER_DEMO_KEEP !== '1') await (await loadSandbox()).downSandbox(demoDir).catch(() => {});
    lock.release();
    if (code === 'EADDRINUSE') console.error(`port ${port} is in use; stop the other process or set KEEPER_PORT`);
    else if (code === 'EACCES') console.error(`port ${port} needs more privileges; set KEEPER_PORT to a port above 1023`);
    else console.error(`[keeper] cannot listen on ${host ?? config.server.host}:${port}: ${errorMessage(e)}`);
    process.exit(1);
  }
  lock.setPort(serving.port);
  // from here on a signal stops cleanly (the lock released, the demo stopped), even mid-banner
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`[keeper] ${sig}: stopping (waiting for running jobs) …`);
    try {
      await serving.close();
      if (demoDir && process.env.KEEPER_DEMO_KEEP !== '1') await (await loadSandbox()).downSandbox(demoDir);
    } catch (e) {
      console.error(`[keeper] shutdown: ${errorMessage(e)}`);
      lock.release();
      process.exit(1);
    }
    lock.release();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  console.log(`phpborg-keeper listening on ${serving.url}  (config ${configPath})`);
  // no phpBorg here yet: the setup wizard's one-time token (functions/setup/state.ts)
  const setup = await prepareSetupToken(config).catch((e: Error) => (console.error(`[keeper] setup token: ${e.message}`), null));
  if (setup) {
    console.log(`phpBorg is not installed here (${setup.reason}).\nsetup token (also in ${setup.file}):\nSETUP_TOKEN=${setup.token}`);
    // the token rides in the fragment: the browser never sends it to a server or a proxy log
    console.log(`setup wizard (restore a backup onto this machine): ${serving.url}/setup#setup_token=${setup.token}`);
  }
  if (demoDir) {
    const sandbox = await loadSandbox();
    const token = await sandbox.sandboxToken(demoDir, { expiresIn: 12 * 3600 });
    const admin = sandbox.adminCredentials(demoDir);
    // the pages take the token from the fragment (never sent to a server, never in a log) and drop it
    console.log(`sign in (link valid 12 h): ${serving.url}/#access_token=${token}`);
    console.log(`or with the demo's phpBorg admin: user ${admin.username}, password ${admin.password}`);
    console.log(`demo admin token (valid 12 h):\nTOKEN=${token}`);
    console.log(`try:  curl -H "Authorization: Bearer $TOKEN" ${serving.url}/api/system/services`);
  }
}

function refuse(e: InstanceLockedError): never {
  console.error(e.message);
  process.exit(1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(`[keeper] cannot start: ${(e as Error).stack ?? e}`);
    process.exit(1);
  });
}
