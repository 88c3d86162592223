// The web UI build when several processes ask at once (the test files run in parallel; a runner
// serves dist while `npm run build:ui` runs): one builds, the others wait (for as long as the lock's
// holder lives) and find it built; a lock or a half-built dir left by a killed build does not stop
// the next one. Run on a copy of the project's UI sources, so the project's own dist is never touched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { UI_DIR, UI_SOURCES } from '../functions/ui/build.ts';

const ROOT = join(import.meta.dirname, '..');

let copy: string;

/** `ensureUiBuilt()` in a child process of the copy: whether it built, and what it logged. */
function ensureInChild(): Promise<{ built: boolean; log: string }> {
  const code = `import('./functions/ui/build.ts').then((m) => m.ensureUiBuilt({ log: (l) => console.error(l) })).then((b) => console.log(JSON.stringify(b)), (e) => { console.error(e.message); process.exit(1); })`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: copy, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ensureUiBuilt exited ${code}: ${err}`));
      resolve({ built: JSON.parse(out.trim()) as boolean, log: err });
    });
  });
}

const dist = () => join(copy, 'functions/ui/dist');
const work = () => join(copy, 'var/ui-build');

describe('web UI build, asked by several processes', { timeout: 300_000 }, () => {
  before(() => {
    copy = mkdtempSync(join(tmpdir(), 'keeper-ui-build-'));
    // what the build reads (a module missing from UI_SOURCES fails the build here), and build.ts with its own imports
    const ui = (rel: string) => relative(ROOT, join(UI_DIR, rel));
    for (const rel of [...UI_SOURCES.map(ui), ui('build.ts'), 'runtime']) cpSync(join(ROOT, rel), join(copy, rel), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    writeFileSync(join(copy, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  after(() => rmSync(copy, { recursive: true, force: true }));

  test('two at once: one builds, the other waits and finds it built; nothing is left beside dist', async () => {
    // a build killed earlier left its lock (a pid that no longer runs) and a half-written dir
    mkdirSync(join(work(), 'dist-999999', 'assets'), { recursive: true });
    writeFileSync(join(work(), 'build.lock'), JSON.stringify({ pid: 999_999_999, port: null, start: '1' }));

    const results = await Promise.all([ensureInChild(), ensureInChild()]);
    assert.deepEqual(results.map((r) => r.built).sort(), [false, true], results.map((r) => r.log).join('\n'));
    assert.ok(existsSync(join(dist(), 'index.html')), 'dist/index.html');
    const assets = readdirSync(join(dist(), 'assets'));
    assert.ok(assets.some((f) => f.endsWith('.js')) && assets.some((f) => f.endsWith('.css')), `assets: ${assets.join(', ')}`);
    assert.deepEqual(readdirSync(work()), [], 'no lock, no build dir left');

    // up to date: nobody builds
    assert.equal((await ensureInChild()).built, false);
  });

  test('a build waits while a live process holds the lock, then builds', async () => {
    const lock = join(work(), 'build.lock');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, port: null, start: null }));
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(copy, 'functions/ui/src/main.ts'), later, later);
    const indexBefore = statSync(join(dist(), 'index.html')).mtimeMs;
    let done = false;
    const child = ensureInChild().finally(() => (done = true));
    await sleep(1_500);
    assert.equal(done, false, 'still waiting for the lock');
    assert.equal(statSync(join(dist(), 'index.html')).mtimeMs, indexBefore, 'dist untouched meanwhile');
    rmSync(lock);
    const r = await child;
    assert.equal(r.built, true);
    assert.match(r.log, new RegExp(`waiting for the web UI build of pid ${process.pid}`));
    assert.ok(statSync(join(dist(), 'index.html')).mtimeMs > indexBefore, 'rebuilt');
  });

  test("UI_SOURCES names every server module the pages import (a change to one rebuilds the UI)", () => {
    const outside = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        // type-only imports leave nothing in the bundle
        else for (const m of readFileSync(p, 'utf8').matchAll(/^import (?!type )[^'"]*from '(\.[^']+)'/gm)) {
          const target = resolve(dirname(p), m[1]!);
          if (!target.startsWith(UI_DIR + '/')) outside.add(relative(UI_DIR, target));
        }
      }
    };
    walk(join(UI_DIR, 'src'));
    assert.ok(outside.size > 0, 'the pages import server modules');
    for (const rel of outside) assert.ok(UI_SOURCES.includes(rel), `${rel} is imported by the UI but not in UI_SOURCES`);
  });
});
