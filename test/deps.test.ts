// scripts/ensure-deps.mjs: the dependency check before npm start/test/bench reinstalls only when the
// lock file's content changed, not when a checkout merely touched it. Run on a copy with a stand-in
// `npm` that records its calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';

test('a touched but unchanged lock file does not reinstall; a changed one does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keeper-deps-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(PROJECT_ROOT, 'scripts', 'ensure-deps.mjs'), join(dir, 'scripts', 'ensure-deps.mjs'));
    const calls = join(dir, 'npm-calls');
    // the stand-in npm "installs" what the lock says, as npm ci does
    writeFileSync(
      join(dir, 'bin', 'npm'),
      `#!/bin/sh\necho "$@" >> ${calls}\nmkdir -p node_modules && cp package-lock.json node_modules/.package-lock.json\n`,
    );
    chmodSync(join(dir, 'bin', 'npm'), 0o755);
    const lock = (v: string) =>
      writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages: { '': {}, 'node_modules/a': { version: v } } }));
    const run = () => {
      const r = spawnSync(process.execPath, ['scripts/ensure-deps.mjs'], { cwd: dir, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').length : 0;
    };
    lock('1.0.0');
    assert.equal(run(), 1, 'a fresh clone installs');
    assert.equal(run(), 1, 'nothing changed: no second install');
    // a checkout rewrites the file with the same bytes: newer date, same content
    lock('1.0.0');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, 'package-lock.json'), later, later);
    assert.equal(run(), 1, 'a newer date alone does not reinstall');
    // an install made before the hash was recorded, matching the lock: adopted, not reinstalled
    rmSync(join(dir, 'node_modules', '.keeper-lock-sha256'));
    assert.equal(run(), 1, 'a matching install is adopted');
    assert.ok(existsSync(join(dir, 'node_modules', '.keeper-lock-sha256')));
    lock('1.0.1');
    assert.equal(run(), 2, 'a changed lock reinstalls');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
