// keeper's processes run as pre-bundled ESM files rather than through a TypeScript loader: they
// start in a fraction of the time and ~30 MiB lighter, and the helper's command line is a fixed path
// a sudoers rule can name. A bundle is rebuilt whenever one of its sources is newer.
import { buildSync } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleFresh, bundlePath } from '../bundle-fresh.mjs';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every bundle and its entry point: the runner (npm start), the CLI and the elevated helper. */
export const BUNDLES = {
  runner: 'scripts/runner.ts',
  keeper: 'scripts/keeper.ts',
  helper: 'scripts/helper.ts',
} as const;
export type BundleName = keyof typeof BUNDLES;

const STALE_CHUNK_MS = 24 * 3600_000;

/** The helper's entry point: where the task registry is wired into runtime/helper/run.ts. */
export const HELPER_ENTRY = join(PROJECT_ROOT, BUNDLES.helper);
export const HELPER_BUNDLE = bundlePath(PROJECT_ROOT, 'helper');

/**
 * Bundles one entry point into `<dir>/<name>.mjs` plus its lazily loaded chunks
 * (`<dir>/<name>.chunk-*.mjs`: a dynamic import() is only read when taken, so `keeper --help` loads
 * no archive or database code) and `<name>.inputs.json`, the sources it was built from. Dependencies
 * stay in node_modules. Bundles live two levels below the project root (var/build/), like their
 * sources (scripts/…, runtime/helper/…), so every path a module derives from its own location
 * (`../..` = the project root) stays right. Returns the files written.
 */
export function buildBundle(name: BundleName, dir: string): string[] {
  const r = buildSync({
    entryPoints: { [name]: join(PROJECT_ROOT, BUNDLES[name]) },
    // the inputs list is then project-relative, whatever the caller's cwd
    absWorkingDir: PROJECT_ROOT,
    outdir: dir,
    bundle: true,
    splitting: true,
    chunkNames: `${name}.chunk-[hash]`,
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    metafile: true,
    write: false,
  });
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, `${name}.mjs`);
  const written: string[] = [];
  // chunks first (content-hashed names: a rewrite is the same bytes), the list, the entry last, each
  // under a unique temporary name then renamed: a process starting meanwhile never sees half a bundle
  const files = [...r.outputFiles].sort((a, b) => Number(a.path === entry) - Number(b.path === entry));
  const inputs = Object.keys(r.metafile.inputs).filter((p) => !p.startsWith('node_modules/'));
  const lists = [{ path: join(dir, `${name}.inputs.json`), contents: JSON.stringify(inputs) }];
  for (const f of [...files.slice(0, -1), ...lists, files[files.length - 1]]) {
    const tmp = `${f.path}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
    written.push(f.path);
  }
  // chunks of earlier builds are no longer referenced, but a process started from one may still import
  // them: removed only once a day old
  const keep = new Set(written.map((p) => basename(p)));
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(`${name}.chunk-`) || !f.endsWith('.mjs') || keep.has(f)) continue;
    const p = join(dir, f);
    const age = Date.now() - (statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > STALE_CHUNK_MS) rmSync(p, { force: true });
  }
  return written;
}

const checked = new Set<BundleName>();

/** Builds bundle `name` in var/build/ when missing or older than a source (checked once per process). */
export function ensureBundle(name: BundleName): string {
  const out = bundlePath(PROJECT_ROOT, name);
  if (checked.has(name)) return out;
  if (!bundleFresh(PROJECT_ROOT, name)) buildBundle(name, dirname(out));
  checked.add(name);
  return out;
}

export const ensureHelperBundle = (): string => ensureBundle('helper');
