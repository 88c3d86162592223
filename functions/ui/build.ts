// Builds the web UI (Vite) when functions/ui/dist is missing or older than any source file.
// `npm start` runs it first (package.json prestart); `npm run build:ui` forces it. The build output
// is never committed. Vite is spawned with an argument array, like every other program we run.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { run, safeEnv } from '../../runtime/exec.ts';

// from the project root (two levels up, here as in the runner's bundle under var/build/)
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const UI_DIR = join(ROOT, 'functions', 'ui');
export const DIST_DIR = join(UI_DIR, 'dist');
// the last: a module of the server's that the UI bundles too
const SOURCES = ['src', 'index.html', 'vite.config.ts', 'tsconfig.json', '../../runtime/error-message.ts', '../../archive/error-message.ts'];

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
  const src = Math.max(...SOURCES.map((s) => newestMtime(join(UI_DIR, s))));
  return src > built ? 'sources changed since the last build' : null;
}

export interface EnsureUiOptions {
  force?: boolean;
  log?: (line: string) => void;
}

/** Builds when missing or stale; returns whether it built. Throws with Vite's output when the build fails. */
export async function ensureUiBuilt(opts: EnsureUiOptions = {}): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.error(`[keeper ui] ${l}`));
  const reason = opts.force ? 'forced' : uiBuildReason();
  if (!reason) return false;
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!existsSync(vite)) {
    throw new Error(`cannot build the web UI (${reason}): vite is not installed; run "npm ci" (dev dependencies included) in ${ROOT}`);
  }
  log(`building the web UI (${reason}) …`);
  const t0 = Date.now();
  const r = await run(process.execPath, [vite, 'build', UI_DIR, '--config', join(UI_DIR, 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: ROOT,
    env: safeEnv({ NODE_ENV: 'production' }),
    timeoutMs: 300_000,
  });
  if (r.code !== 0) {
    throw new Error(`the web UI build failed (exit ${r.code ?? r.signal}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-30).join('\n')}`);
  }
  log(`web UI built in ${((Date.now() - t0) / 1000).toFixed(1)} s → ${DIST_DIR}`);
  return true;
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
