// runtime/temp.ts: keeper's temporaries under <paths.state>/tmp, private, named after their process,
// swept when that process is gone. No sandbox: the defaults file is written, never used here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keeperTempDir, setTempStateDir, sweepTemp, tempRoot, tempStateDir, withKeeperTemp } from '../runtime/temp.ts';
import { withDefaultsFile } from '../runtime/mariadb.ts';
import type { PhpborgEnv } from '../runtime/install.ts';

const base = mkdtempSync(join(tmpdir(), 'keeper-temp-test-'));
const state = join(base, 'state');
const mode = (p: string) => statSync(p).mode & 0o777;

/** A pid that was a process a moment ago and is not any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test.after(() => rmSync(base, { recursive: true, force: true }));

test('without a state dir set, nothing is written: no fallback to the shared /tmp', async () => {
  assert.throws(() => tempStateDir(), /setTempStateDir/);
  const env = { DB_USER: 'u', DB_PASSWORD: 'p' } as PhpborgEnv;
  await assert.rejects(withDefaultsFile(env, async () => 1), /setTempStateDir/);
});

test('a defaults file: 0600 in a 0700 <pid>-my-* dir under <state>/tmp (0700), gone afterwards', async () => {
  setTempStateDir(state);
  const password = `pw-${process.pid}-"quoted"`;
  const env = { DB_USER: 'keeper', DB_PASSWORD: password, DB_HOST: '127.0.0.1', DB_PORT: 3306, DB_SOCKET: '' } as unknown as PhpborgEnv;
  const before = readdirSync(tmpdir()).filter((n) => n.startsWith('keeper-my-'));
  let seen = '';
  await withDefaultsFile(env, async (file) => {
    seen = file;
    const dir = join(file, '..');
    assert.equal(join(dir, '..'), tempRoot(state));
    assert.match(dir.split('/').pop()!, new RegExp(`^${process.pid}-my-`));
    assert.equal(mode(tempRoot(state)), 0o700);
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(file), 0o600);
    assert.ok(readFileSync(file, 'utf8').includes('password="pw-'));
  });
  assert.ok(seen && !existsSync(join(seen, '..')), 'removed after use');
  assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('keeper-my-') && !before.includes(n)), [], 'nothing new under /tmp');
});

test('withKeeperTemp removes its dir when fn throws', async () => {
  let dir = '';
  await assert.rejects(
    withKeeperTemp('x', async (d) => {
      dir = d;
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.ok(dir.startsWith(tempRoot(state)) && !existsSync(dir));
});

test('sweepTemp removes the dirs of dead pids only; live ones and foreign names stay', async () => {
  const root = tempRoot(state);
  const dead = join(root, `${deadPid()}-my-abcdef`);
  mkdirSync(join(dead, 'sub'), { recursive: true });
  const mine = await keeperTempDir('live');
  const parent = join(root, `${process.ppid}-my-parent`);
  mkdirSync(parent);
  const foreign = join(root, 'not-ours');
  mkdirSync(foreign);
  const removed = await sweepTemp(state);
  assert.deepEqual(removed, [dead]);
  assert.ok(!existsSync(dead));
  for (const p of [mine, parent, foreign]) assert.ok(existsSync(p), p);
  // isAlive decides; a missing root is not an error
  assert.deepEqual((await sweepTemp(state, () => false)).sort(), [parent].sort());
  assert.deepEqual(await sweepTemp(join(base, 'nowhere')), []);
});
