// The helper runs as one pre-bundled ESM file rather than through a TypeScript loader: the elevated
// process then starts in about a third of the time and ~30 MiB lighter, and its command line is a
// fixed path a sudoers rule can name. The bundle is rebuilt whenever a source file is newer.
import { buildSync } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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

export interface BundleOptions {
  /**
   * Code reached only through import() goes into chunks beside the bundle (`<name>-<hash>.mjs`), loaded
   * when imported: a process then loads what it runs, not the code (and packages) of everything else.
   */
  split?: boolean;
}

// chunks an older build left: kept a while, since a process started from that build may still import them
const OLD_CHUNK_MS = 60 * 60 * 1000;

/**
 * Bundles one entry point into one ESM file (dependencies stay in node_modules), plus its chunks when
 * split. Bundles live two levels below the project root (var/build/), like their sources (scripts/…,
 * runtime/helper/…), so every path a module derives from its own location (`../..` = the project root)
 * stays right; chunks go beside the bundle for the same reason. Each file is written under a unique
 * temporary name, then renamed, the bundle last: processes building at once never see half a build.
 * Returns the files written, the bundle last.
 */
export function buildBundle(entry: string, outfile: string, o: BundleOptions = {}): string[] {
  const dir = dirname(outfile);
  const name = basename(outfile, '.mjs');
  const { outputFiles } = buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    write: false,
    ...(o.split
      ? { splitting: true, outdir: dir, entryNames: name, chunkNames: `${name}-[hash]`, outExtension: { '.js': '.mjs' } }
      : { outfile }),
  });
  mkdirSync(dir, { recursive: true });
  const outputs = outputFiles.sort((a, b) => Number(a.path === outfile) - Number(b.path === outfile));
  for (const f of outputs) {
    const tmp = `${f.path}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
  const files = outputs.map((f) => f.path);
  if (o.split) {
    const keep = new Set(files.map((f) => basename(f)));
    for (const n of readdirSync(dir)) {
      if (!n.startsWith(`${name}-`) || !n.endsWith('.mjs') || keep.has(n)) continue;
      try {
        if (Date.now() - statSync(join(dir, n)).mtimeMs > OLD_CHUNK_MS) rmSync(join(dir, n), { force: true });
      } catch {
        /* another build removed it */
      }
    }
  }
  return files;
}

let checked = false;

/** Builds the helper bundle when missing or older than its sources (once per process). */
export function ensureHelperBundle(): string {
  if (checked) return HELPER_BUNDLE;
  if (stale()) buildBundle(HELPER_ENTRY, HELPER_BUNDLE, { split: true });
  checked = true;
  return HELPER_BUNDLE;
}
