// Builds the web UI (Vite) when functions/ui/dist is missing or older than any source file.
// `npm start` runs it first (package.json prestart); `npm run build:ui` forces it. The build output
// is never committed. Vite is spawned with an argument array, like every other program we run.
// Several processes may ask at once (the test files run in parallel, a runner serves dist while
// `npm run build:ui` runs): one builds under a lock file while the others wait, and the build goes
// to a fresh dir renamed into place, so nobody reads a half-written or emptied dist.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run, safeEnv } from '../../runtime/exec.ts';
import { acquireLockFile, InstanceLockedError, type InstanceLock } from '../../runtime/instance-lock.ts';
import { removeTree } from '../../runtime/remove-tree.ts';

// from the project root (two levels up, here as in the runner's bundle under var/build/)
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const UI_DIR = join(ROOT, 'functions', 'ui');
export const DIST_DIR = join(UI_DIR, 'dist');
/** the build lock and the dirs a build writes before the rename (same filesystem as dist) */
const WORK_DIR = join(ROOT, 'var', 'ui-build');
const LOCK_WAIT_MS = 600_000;
/** what the build reads, relative to UI_DIR; the last ones are the server's modules the UI bundles too */
export const UI_SOURCES = ['src', 'index.html', 'vite.config.ts', 'tsconfig.json', '../../runtime/error-message.ts', '../../archive/error-message.ts', '../backup/auto-notes.ts'];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, e)));
  return newest;
}

/** Why the UI must be (re)built, or null when dist is up to date. */
export function uiBuildReason(): string | null {
  const index = join(DIST_DIR, 'index.html');
  if (!existsSync(index)) return 'no build yet';
  const built = statSync(index).mtimeMs;
  const src = Math.max(...UI_SOURCES.map((s) => newestMtime(join(UI_DIR, s))));
  return src > built ? 'sources changed since the last build' : null;
}

export interface EnsureUiOptions {
  force?: boolean;
  log?: (line: string) => void;
}

/** Builds when missing or stale; returns whether it built. Throws with Vite's output when the build fails. */
export function ensureUiBuilt(opts: EnsureUiOptions = {}): Promise<boolean> {
  // one build at a time within this process too (the lock file counts processes, not calls)
  const next = inProcess.then(() => buildOnce(opts));
  inProcess = next.catch(() => false);
  return next;
}

let inProcess: Promise<unknown> = Promise.resolve();

async function buildOnce(opts: EnsureUiOptions): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.error(`[keeper ui] ${l}`));
  if (!opts.force && !uiBuildReason()) return false;
  const lock = await buildLock(log);
  try {
    // another process may have built it while this one waited
    const reason = opts.force ? 'forced' : uiBuildReason();
    if (!reason) return false;
    await build(reason, log);
    return true;
  } finally {
    lock.release();
  }
}

/** The build lock, waited for while another live process holds it. */
async function buildLock(log: (line: string) => void): Promise<InstanceLock> {
  mkdirSync(WORK_DIR, { recursive: true, mode: 0o700 });
  const path = join(WORK_DIR, 'build.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let said = false; ; said = true) {
    try {
      return acquireLockFile(path);
    } catch (e) {
      if (!(e instanceof InstanceLockedError)) throw e;
      if (Date.now() > deadline) {
        throw new Error(`the web UI build of pid ${e.owner.pid} has held ${path} for ${LOCK_WAIT_MS / 60_000} minutes: stop that process, or remove the file if it is not building`, { cause: e });
      }
      if (!said) log(`waiting for the web UI build of pid ${e.owner.pid} …`);
      await sleep(200);
    }
  }
}

/** Vite into a fresh dir, then renamed over dist (holding the lock). */
async function build(reason: string, log: (line: string) => void): Promise<void> {
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) {
    throw new Error(`cannot build the web UI (${reason}): vite is not installed; run "npm ci" (dev dependencies included) in ${ROOT}`);
  }
  // whatever a killed build left here is stale: only the lock's holder writes in this dir
  for (const e of readdirSync(WORK_DIR)) if (e.startsWith('dist-') || e.startsWith('old-')) await removeTree(join(WORK_DIR, e));
  const out = join(WORK_DIR, `dist-${process.pid}`);
  const old = join(WORK_DIR, `old-${process.pid}`);
  log(`building the web UI (${reason}) …`);
  const t0 = Date.now();
  const r = await run(process.execPath, [vite, 'build', UI_DIR, '--config', join(UI_DIR, 'vite.config.ts'), '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
    env: safeEnv({ NODE_ENV: 'production' }),
    timeoutMs: 300_000,
  });
  if (r.code !== 0) {
    await removeTree(out);
    throw new Error(`the web UI build failed (exit ${r.code ?? r.signal}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-30).join('\n')}`);
  }
  // a reader finds the old dist or the new one: only between the two renames, for an instant, neither
  if (existsSync(DIST_DIR)) await rename(DIST_DIR, old);
  await rename(out, DIST_DIR);
  await removeTree(old);
  log(`web UI built in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${DIST_DIR}`);
}

// `tsx functions/ui/build.ts [--force]` (not the runner's bundle, which holds this module too)
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && basename(process.argv[1] ?? '') === 'build.ts') {
  ensureUiBuilt({ force: process.argv.includes('--force') }).then(
    (built) => {
      if (!built) console.error('[keeper ui] web UI is up to date');
    },
    (e: Error) => {
      console.error(`[keeper ui] ${e.message}`);
      process.exit(1);
    },
  );
}
