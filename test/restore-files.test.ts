// Restore's file primitives and diffs on temp dirs: swap in/undo/finish, phpborg-* sync of shared
// system dirs, SSH modes, tree description; .env / settings / file diffs (names only, never values).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, symlinkSync, statSync, readdirSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeTree, finishSwap, replaceTree, swapIn, syncPrefixed, tightenSsh, undoSwap, visudoCheck } from '../functions/restore/files.ts';
import { diffEnv, diffHashes, diffSettings } from '../functions/restore/diff.ts';
import { secretHash } from '../archive/format.ts';
import { emergencyCommand } from '../runtime/operation/index.ts';
import { parseEnv } from '../runtime/install.ts';

const root = mkdtempSync(join(tmpdir(), 'keeper-restore-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `t${++n}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const tree = (dir: string, files: Record<string, string>) => {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
};

test('swapIn moves the old tree aside, undoSwap puts it back exactly, finishSwap deletes it', async () => {
  const d = fresh();
  const code = join(d, 'code');
  tree(code, { 'a.php': 'old', 'src/b.php': 'old b' });
  symlinkSync('a.php', join(code, 'link'));
  const before = await describeTree(code);
  const incoming = join(d, 'staging-code');
  tree(incoming, { 'a.php': 'new', 'c.php': 'new c' });

  const s = await swapIn(incoming, code, 'x1');
  assert.equal(readFileSync(join(code, 'a.php'), 'utf8'), 'new');
  assert.ok(s.aside && existsSync(s.aside), 'old tree kept aside');
  assert.ok(!existsSync(incoming));

  await undoSwap(s);
  assert.deepEqual(await describeTree(code), before);
  assert.ok(!existsSync(s.aside!));

  const s2 = await swapIn(join(d, 'nothing-there'), code, 'x2').catch((e) => e as Error);
  assert.ok(s2 instanceof Error, 'a missing incoming tree fails');
  assert.deepEqual(await describeTree(code), before, 'and the current tree is back in place');

  const incoming2 = join(d, 'staging2');
  tree(incoming2, { 'z.php': 'z' });
  const s3 = await swapIn(incoming2, code, 'x3');
  await finishSwap(s3);
  assert.deepEqual(readdirSync(d).sort(), ['code']);
});

test('replaceTree copies (modes, links) and can remove; null source moves the dir aside', async () => {
  const d = fresh();
  const src = join(d, 'src');
  tree(src, { 'id_ed25519': 'key', 'keys/srv1/id_rsa': 'k2' });
  chmodSync(join(src, 'id_ed25519'), 0o600);
  symlinkSync('id_ed25519', join(src, 'alias'));
  const target = join(d, 'ssh');
  tree(target, { 'old': 'x' });
  const s = await replaceTree(src, target, 't');
  assert.deepEqual(await describeTree(target), await describeTree(src));
  await finishSwap(s);
  const s2 = await replaceTree(null, target, 't2');
  assert.ok(!existsSync(target));
  await undoSwap(s2);
  assert.deepEqual(await describeTree(target), await describeTree(src));
});

test('syncPrefixed touches only phpborg-* entries: writes, replaces, removes; a failed check changes nothing', async () => {
  const d = fresh();
  const src = join(d, 'src');
  const dest = join(d, 'dest');
  tree(src, { 'phpborg-workers': 'w1\n', 'phpborg-backup': 'b\n', 'phpborg-x.service.d/override.conf': 'o' });
  tree(dest, { 'phpborg-workers': 'edited\n', 'phpborg-added-later': 'z', 'other-package': 'keep me' });
  const r = await syncPrefixed(src, dest, 'phpborg-');
  assert.equal(readFileSync(join(dest, 'phpborg-workers'), 'utf8'), 'w1\n');
  assert.equal(readFileSync(join(dest, 'phpborg-x.service.d/override.conf'), 'utf8'), 'o');
  assert.ok(!existsSync(join(dest, 'phpborg-added-later')));
  assert.equal(readFileSync(join(dest, 'other-package'), 'utf8'), 'keep me');
  assert.deepEqual(r.removed, [join(dest, 'phpborg-added-later')]);

  writeFileSync(join(src, 'phpborg-workers'), 'broken');
  const before = await describeTree(dest);
  await assert.rejects(
    syncPrefixed(src, dest, 'phpborg-', {
      check: async (f) => {
        if (readFileSync(f, 'utf8') === 'broken') throw new Error('syntax error');
      },
    }),
    /syntax error/,
  );
  assert.deepEqual(Object.keys(await describeTree(dest)).sort(), Object.keys(before).sort(), 'no temp file left');
  assert.equal(readFileSync(join(dest, 'phpborg-workers'), 'utf8'), 'w1\n');
});

test('visudoCheck is skipped without visudo and runs it when given', async () => {
  const d = fresh();
  writeFileSync(join(d, 'f'), 'x');
  await visudoCheck(join(d, 'f'), null);
  await assert.rejects(visudoCheck(join(d, 'f'), 'false'));
});

test('tightenSsh: dirs 0700, files 0600, links untouched', async () => {
  const d = fresh();
  tree(d, { 'ssh/id_rsa.pub': 'pub', 'ssh/keys/s1/id': 'k' });
  chmodSync(join(d, 'ssh/id_rsa.pub'), 0o644);
  chmodSync(join(d, 'ssh/keys'), 0o755);
  await tightenSsh(join(d, 'ssh'));
  assert.equal(statSync(join(d, 'ssh/id_rsa.pub')).mode & 0o777, 0o600);
  assert.equal(statSync(join(d, 'ssh/keys')).mode & 0o777, 0o700);
  assert.equal(statSync(join(d, 'ssh/keys/s1/id')).mode & 0o777, 0o600);
});

test('diffEnv names keys only; diffHashes; diffSettings compares secrets by keyed hash', () => {
  const e = diffEnv('A=1\nB=2\nSECRET=s1\nNEW=x\n', 'A=1\nB=3\nSECRET=s2\nOLD=y\n');
  assert.deepEqual(e.changed, ['B', 'NEW', 'OLD', 'SECRET']);
  assert.ok(!JSON.stringify(e).includes('s1') && !JSON.stringify(e).includes('s2'));
  const h = diffHashes(new Map([['a', '1'], ['b', '2'], ['c', '3']]), new Map([['a', '1'], ['b', 'x'], ['d', '4']]));
  assert.deepEqual(h, { added: ['c'], removed: ['d'], changed: ['b'] });

  const key = 'app-secret';
  const row = (k: string, value: string | null, secret = false) => ({ key: k, value, category: null, type: null, description: null, updated_at: null, secret });
  const backup = [row('smtp.host', 'mail'), row('smtp.password', secretHash(key, 'pw1'), true), row('gone', '1'), row('same_secret', secretHash(key, 'k'), true)];
  const now = [
    { key: 'smtp.host', value: 'mail2' },
    { key: 'smtp.password', value: 'pw2' },
    { key: 'same_secret', value: 'k' },
    { key: 'brand_new', value: 'v' },
  ];
  assert.deepEqual(diffSettings(now, backup, key), { modified: ['smtp.host', 'smtp.password'], added: ['brand_new'], removed: ['gone'] });
});

test('the emergency command is absolute, runnable from anywhere, and quoted for a shell', () => {
  const cmd = emergencyCommand({ configPath: '/etc/phpborg-keeper/keeper.json' }, { id: 7, file: '/x.tar.gz' });
  const [sudo, script, id, flag, cfg] = cmd.split(' ');
  assert.equal(sudo, 'sudo');
  assert.ok(script.startsWith('/') && existsSync(script) && (statSync(script).mode & 0o111) !== 0, `${script} is an executable`);
  assert.deepEqual([id, flag, cfg], ['7', '--config', '/etc/phpborg-keeper/keeper.json']);
  // no catalog id: the file, quoted when it holds a space or a quote
  assert.match(emergencyCommand({ configPath: "/srv/it's/keeper.json" }, { id: null, file: '/b k/a.tar.gz' }), / '\/b k\/a\.tar\.gz' --config '\/srv\/it'\\''s\/keeper\.json'$/);
});

test("an .env (live or from an archive) whose DB_NAME would be read as a client option is refused", () => {
  const env = (name: string) => `DB_NAME=${name}\nDB_USER=phpborg\nDB_PASSWORD=x\nAPP_SECRET=s\n`;
  assert.equal(parseEnv(env('phpborg_new')).env.DB_NAME, 'phpborg_new');
  assert.throws(() => parseEnv(env('--plugin-dir=/tmp/evil')), /DB_NAME.*must not start with "-"/);
});
