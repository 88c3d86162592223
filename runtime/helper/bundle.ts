// The helper runs as one pre-bundled ESM file rather than through a TypeScript loader: the elevated
// process then starts in about a third of the time and ~30 MiB lighter, and its command line is a
// fixed path a sudoers rule can name. The bundle is rebuilt whenever a source file is newer.
import { buildSync } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The helper's entry point: where the task registry is wired into runtime/helper/run.ts. */
export const HELPER_ENTRY = join(PROJECT_ROOT, 'scripts', 'helper.ts');
export const HELPER_BUNDLE = join(PROJECT_ROOT, 'var', 'build', 'helper.mjs');

// everything the helper can import; the UI is never part of it
const SOURCES = ['archive', 'functions', 'runtime', 'state'].map((d) => join(PROJECT_ROOT, d));
const SKIP = new Set([join(PROJECT_ROOT, 'functions', 'ui'), join(PROJECT_ROOT, 'node_modules')]);

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP.has(p)) newest = Math.max(newest, newestSource(p));
    } else if (e.name.endsWith('.ts')) {
      newest = Math.max(newest, statSync(p).mtimeMs);
    }
  }
  return newest;
}

function stale(): boolean {
  if (!existsSync(HELPER_BUNDLE)) return true;
  const built = statSync(HELPER_BUNDLE).mtimeMs;
  return statSync(HELPER_ENTRY).mtimeMs > built || SOURCES.some((d) => newestSource(d) > built);
}

/**
 * Bundles one entry point into one ESM file (dependencies stay in node_modules). Bundles live two
 * levels below the project root (var/build/), like their sources (scripts/…, runtime/helper/…), so every
 * path a module derives from its own location (`../..` = the project root) stays right.
 */
export function buildBundle(entry: string, outfile: string): void {
  buildSync({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
}

let checked = false;

/** Builds the helper bundle when missing or older than its sources (once per process). */
export function ensureHelperBundle(): string {
  if (checked) return HELPER_BUNDLE;
  if (stale()) {
    mkdirSync(dirname(HELPER_BUNDLE), { recursive: true });
    // a unique temporary name, then rename: processes building at once never see half a file
    const tmp = `${HELPER_BUNDLE}.${process.pid}.${Date.now()}.tmp`;
    buildBundle(HELPER_ENTRY, tmp);
    renameSync(tmp, HELPER_BUNDLE);
  }
  checked = true;
  return HELPER_BUNDLE;
}
