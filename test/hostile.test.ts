// Hostile input of every kind — archives, uploads, settings, requests, emergency arguments — each
// refused with a clear code and nothing changed: the code, configuration and SSH trees, every table's
// CHECKSUM, MariaDB's own accounts and schemas, the catalog and settings, the storage dir's listing,
// and the mode and owner of every parent of the storage path. One sandbox for the whole file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { runOk } from '../runtime/exec.ts';
import type { JobView } from '../state/jobs.ts';
import { completedBackup, insertCompleted } from '../state/catalog.ts';
import { getSettings, seedSettings } from '../state/settings.ts';
import { openLedger } from '../state/ledger.ts';
import { archiveFileName, extractArchive, readHead, verifyArchive } from '../archive/index.ts';
import { ensureDatabaseAndUser } from '../runtime/mariadb-admin.ts';
import { recreateDatabase } from '../runtime/mariadb-import.ts';
import { OWN_SUBDIR, storagePolicy } from '../runtime/storage-path.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { entriesOf, tarOf, type Entry } from './support/tar-forge.ts';
import { apiRequest, installSnapshot, jobOf as jobOf_, keeperCli, scriptPath, spawnOut } from './support/install.ts';
import { accessToken } from './support/runner.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;
let good: { id: number; file: string };
let root: string;
let entries: Entry[];
const files: Record<string, string> = {};

const auth = () => ({ authorization: `Bearer ${token}` });
const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const jobOf = (res: Response, timeoutMs = 90_000) => jobOf_(runner, res, timeoutMs);
const bare = { PATH: process.env.PATH ?? '', HOME: '/tmp' };
const emergency = (args: string[], input = '') => spawnOut(scriptPath('emergency-restore'), [...args, '--config', sb.info.config], { env: bare, input });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function task(name: string, params: Record<string, unknown>): Promise<JobView> {
  const r = runner.jobs.start(name, params, { id: null, name: 'test' });
  assert.ok(r.ok, JSON.stringify(r));
  return runner.jobs.wait(r.jobId, 90_000);
}

// ── what "nothing changed" means ─────────────────────────────────────────────────────────────────

const storagePath = () => getSettings(runner.ledger, sb.config.paths.storage).backup_storage_path;
function parentsOf(p: string): { path: string; mode: number; uid: number; gid: number }[] {
  const out = [];
  for (let d = p; ; d = dirname(d)) {
    if (existsSync(d)) {
      const st = statSync(d);
      out.push({ path: d, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    }
    if (dirname(d) === d) break;
  }
  return out;
}
async function state() {
  const storage = storagePath();
  return {
    install: await installSnapshot(sb),
    mariadb: {
      accounts: await sb.rootQuery('SELECT User, Host, Priv FROM mysql.global_priv ORDER BY User, Host'),
      schemas: await sb.rootQuery('SHOW DATABASES'),
    },
    catalog: runner.ledger.prepare('SELECT id, filename, filepath, hash_sha256, status, origin, created_at FROM phpborg_backups ORDER BY id').all(),
    settings: runner.ledger.prepare('SELECT key, value_json FROM settings ORDER BY key').all(),
    storage: existsSync(storage) ? readdirSync(storage).sort() : null,
    parents: parentsOf(storage),
    beside: readdirSync(dirname(sb.config.paths.code)).filter((n) => n.includes('keeper')).sort(),
  };
}
/** Runs `fn` and asserts that nothing it could reach was changed. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await state();
  await fn();
  assert.deepEqual(await state(), before, 'nothing was changed');
}

// ── forging archives (the tiny tar writer of restore-hostile.test.ts) ────────────────────────────

type ManifestEntry = { path: string; type: string; size: number; mode: number; linkname?: string; sha256?: string };
interface Forge {
  /** .env keys to set in config/env.backup */
  env?: Record<string, string>;
  /** metadata.json fields to set */
  metadata?: Record<string, unknown>;
  /** entries added just before manifest.json, listed in it too */
  extra?: Entry[];
}
/** A consistent archive (its manifest matches every entry) built from the genuine one with `f` applied. */
function forge(name: string, f: Forge): string {
  const list = entries.map((e) => ({ ...e }));
  const at = (rel: string) => list.find((e) => e.path === `${root}/${rel}`)!;
  if (f.env) {
    const e = at('config/env.backup');
    let text = e.data!.toString('utf8');
    for (const [k, v] of Object.entries(f.env)) {
      const re = new RegExp(`^${k}=.*$`, 'm');
      text = re.test(text) ? text.replace(re, `${k}=${v}`) : `${text}${k}=${v}\n`;
    }
    e.data = Buffer.from(text);
  }
  if (f.metadata) {
    const e = at('metadata.json');
    e.data = Buffer.from(JSON.stringify({ ...JSON.parse(e.data!.toString('utf8')), ...f.metadata }, null, 2));
  }
  const manifestEntry = list.pop()!;
  assert.equal(manifestEntry.path, `${root}/manifest.json`);
  list.push(...(f.extra ?? []));
  const m = JSON.parse(manifestEntry.data!.toString('utf8')) as { entries: ManifestEntry[] };
  const byPath = new Map(list.map((e) => [e.path.slice(root.length + 1), e]));
  m.entries = m.entries.filter((x) => byPath.has(x.path));
  for (const x of m.entries) {
    const e = byPath.get(x.path)!;
    if (e.type === 'file') Object.assign(x, { size: e.data!.length, sha256: sha(e.data!) });
  }
  for (const e of f.extra ?? []) {
    const rel = e.path.slice(root.length + 1);
    m.entries.push(e.type === 'file' ? { path: rel, type: 'file', size: e.data!.length, mode: e.mode, sha256: sha(e.data!) } : { path: rel, type: e.type, size: 0, mode: e.mode, ...(e.link ? { linkname: e.link } : {}) });
  }
  list.push({ ...manifestEntry, data: Buffer.from(JSON.stringify(m, null, 2)) });
  const file = join(work, `${name}.tar.gz`);
  writeFileSync(file, tarOf(list), { mode: 0o600 });
  files[name] = file;
  return file;
}

async function upload(body: Buffer, filename: string, r: Runner = runner): Promise<Response> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(body)]), filename);
  return r.request('/api/phpborg-backup/upload', { method: 'POST', headers: auth(), body: form });
}
async function expectError(res: Response, status: number, code: string | RegExp): Promise<{ code: string; message: string; key?: string }> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: { code: string; message: string; key?: string } };
  if (typeof code === 'string') assert.equal(body.error.code, code, text);
  else assert.match(body.error.code, code, text);
  assert.ok(body.error.message.length > 15, `a clear message: ${body.error.message}`);
  return body.error;
}
/** A restore job refused at its verify step, before anything changed. */
async function refusedRestore(file: string, code: string, params: Record<string, unknown> = {}): Promise<JobView> {
  const j = await task('backup.restore', { file, ...params });
  assert.equal(j.status, 'failed', JSON.stringify(j.result));
  assert.equal(j.error?.code, code, j.error?.message);
  assert.equal(j.error?.step, 'restore.verify', j.error?.message);
  assert.equal(j.error?.changed, false);
  assert.match(j.error!.message, /nothing was changed/);
  return j;
}

before(async () => {
  sb = await startSandbox();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-hostile-'));
  const j = await jobOf(await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  good = j.result as { id: number; file: string };
  ({ root, entries } = await entriesOf(good.file));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ── 1. an archive's .env never reaches MariaDB's own schemas or accounts ─────────────────────────

for (const [name, env] of [
  ['db_mysql', { DB_NAME: 'mysql' }],
  ['db_information_schema', { DB_NAME: 'information_schema' }],
  ['db_performance_schema', { DB_NAME: 'performance_schema' }],
  ['db_sys_uppercase', { DB_NAME: 'SYS' }],
  ['user_root', { DB_USER: 'root' }],
  ['user_mariadb_sys', { DB_USER: 'mariadb.sys' }],
  ['user_mysql_session', { DB_USER: 'mysql.session' }],
] as const) {
  test(`restore: an archive whose .env says ${JSON.stringify(env)} → unsafe_database at verify, even with accept_db_change`, async () => {
    const file = forge(name, { env });
    await unchanged(async () => {
      const j = await refusedRestore(file, 'unsafe_database', { accept_db_change: true });
      assert.match(j.error!.message, /MariaDB|privileged|system/);
    });
  });
}

test('restore: another DB_NAME/DB_USER than the live .env → database_change_unconfirmed naming both', async () => {
  const file = forge('other_db', { env: { DB_NAME: 'phpborg_elsewhere', DB_USER: 'someone_else' } });
  await unchanged(async () => {
    const j = await refusedRestore(file, 'database_change_unconfirmed');
    assert.match(j.error!.message, /DB_NAME phpborg\S* → phpborg_elsewhere/);
    assert.match(j.error!.message, /DB_USER \S+ → someone_else/);
    assert.match(j.error!.message, /--accept-db-change/);
    // the preview says so before anyone confirms
    const p = await task('backup.restore_preview', { file });
    assert.equal(p.status, 'succeeded', JSON.stringify(p.error));
    assert.ok((p.result as { warnings: string[] }).warnings.some((w) => /DB_NAME \S+ → phpborg_elsewhere/.test(w)), JSON.stringify(p.result));
  });
});

test('restore through the API: the same refusal, and accept_db_change is a boolean (422 otherwise)', async () => {
  await unchanged(async () => {
    const bad = await api(`/api/phpborg-backup/${good.id}/restore`, { method: 'POST', body: JSON.stringify({ confirm: true, accept_db_change: 'yes' }) });
    await expectError(bad, 422, 'invalid_input');
  });
});

test('restore --fresh (bare metal): DB_NAME=mysql refused before anything is created', async () => {
  const file = forge('fresh_mysql', { env: { DB_NAME: 'mysql' } });
  const fresh = join(work, 'fresh');
  for (const d of ['code', 'ssh', 'etc', 'state', 'storage']) mkdirSync(join(fresh, d), { recursive: true });
  const raw = JSON.parse(readFileSync(sb.info.config, 'utf8')) as { paths: Record<string, string> };
  const cfg = join(fresh, 'keeper.json');
  writeFileSync(cfg, JSON.stringify({ ...raw, paths: { ...raw.paths, code: join(fresh, 'code', 'phpBorg'), ssh: join(fresh, 'ssh'), etc: join(fresh, 'etc'), state: join(fresh, 'state'), storage: join(fresh, 'storage') } }));
  await unchanged(async () => {
    const r = await spawnOut(scriptPath('keeper'), ['--config', cfg, '--json', 'restore', '--fresh', file], { env: bare });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /unsafe_database/);
    assert.match(r.stdout + r.stderr, /MariaDB's own schemas/);
    assert.ok(!existsSync(join(fresh, 'code', 'phpBorg')), 'no code laid down');
  });
});

test('emergency restore: DB_USER=root refused before the safety copy; exit 1, nothing changed', async () => {
  const file = forge('emergency_root', { env: { DB_USER: 'root' } });
  await unchanged(async () => {
    const r = await emergency([file, '--yes', '--accept-db-change']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /DB_USER=root, a privileged or system MariaDB account: refused/);
    assert.match(r.stdout + r.stderr, /[Nn]othing was changed/);
  });
});

test('emergency restore: another DB_NAME than the live .env needs --accept-db-change', async () => {
  const file = forge('emergency_other', { env: { DB_NAME: 'phpborg_other' } });
  await unchanged(async () => {
    const r = await emergency([file, '--yes']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /DB_NAME \S+ → phpborg_other/);
    assert.match(r.stdout + r.stderr, /--accept-db-change/);
  });
});

test('emergency restore: an account that exists under another host is never altered', async () => {
  await sb.rootQuery("CREATE USER IF NOT EXISTS 'intruder'@'10.9.9.9' IDENTIFIED BY 'intruder-pass'");
  const file = forge('emergency_intruder', { env: { DB_USER: 'intruder', DB_PASSWORD: 'forged-pass' } });
  await unchanged(async () => {
    const r = await emergency([file, '--yes', '--accept-db-change']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /intruder@10\.9\.9\.9 exists under another host/);
  });
});

test('database step: an account with global privileges is refused before CREATE or ALTER', async () => {
  await sb.rootQuery("CREATE USER IF NOT EXISTS 'power'@'localhost' IDENTIFIED BY 'power-pass'");
  await sb.rootQuery("GRANT SELECT ON *.* TO 'power'@'localhost'");
  const env = { ...sb.readEnv().env, DB_NAME: 'phpborg_power', DB_USER: 'power', DB_PASSWORD: 'not-the-password' };
  await unchanged(async () => {
    await assert.rejects(ensureDatabaseAndUser(sb.config, env), /power@localhost has global privileges/);
  });
});

test('database step: an account that logs in through unix_socket is left alone', async () => {
  await sb.rootQuery("CREATE USER IF NOT EXISTS 'socketonly'@'localhost' IDENTIFIED VIA unix_socket");
  const env = { ...sb.readEnv().env, DB_NAME: 'phpborg_socket', DB_USER: 'socketonly', DB_PASSWORD: 'whatever-pass' };
  await unchanged(async () => {
    await assert.rejects(ensureDatabaseAndUser(sb.config, env), /socketonly@localhost logs in with unix_socket/);
  });
});

test('import: the last line before DROP DATABASE refuses a system schema whatever called it', async () => {
  await unchanged(async () => {
    await assert.rejects(recreateDatabase({ ...sb.readEnv().env, DB_NAME: 'mysql' }), /MariaDB's own schemas/);
  });
});

// ── 5. verify means restorable ───────────────────────────────────────────────────────────────────

test('verify: an entry beneath a file is refused (layout), by the core and by the verify job', async () => {
  const file = forge('beneath_file', {
    extra: [
      { path: `${root}/code/plain-file`, type: 'file', mode: 0o644, data: Buffer.from('a file\n') },
      { path: `${root}/code/plain-file/child`, type: 'file', mode: 0o644, data: Buffer.from('under a file\n') },
    ],
  });
  await unchanged(async () => {
    const v = await verifyArchive(file);
    assert.equal(v.ok, false);
    assert.equal(v.code, 'layout');
    assert.match(JSON.stringify(v.checks), /beneath code\/plain-file, which is a file/);
    const j = await task('backup.verify', { file });
    assert.equal(j.status, 'failed');
    assert.equal(j.error?.code, 'layout', j.error?.message);
  });
});

test('verify: a file entry that is also the folder of earlier entries is refused', async () => {
  const file = forge('file_over_dir', {
    extra: [
      { path: `${root}/code/twice/inner`, type: 'file', mode: 0o644, data: Buffer.from('inner\n') },
      { path: `${root}/code/twice`, type: 'file', mode: 0o644, data: Buffer.from('now a file\n') },
    ],
  });
  await unchanged(async () => {
    const v = await verifyArchive(file);
    assert.equal(v.ok, false);
    assert.equal(v.code, 'layout');
    await refusedRestore(file, 'layout');
  });
});

test('upload: an archive with an entry beneath a file → 422, nothing left in the storage dir', async () => {
  await unchanged(async () => {
    await expectError(await upload(readFileSync(files.beneath_file), 'x.tar.gz'), 422, 'not_a_keeper_archive');
  });
});

test('preview: says it is not verified (verified: false and a warning)', async () => {
  await unchanged(async () => {
    const res = await api(`/api/phpborg-backup/${good.id}/restore-preview?wait=60`);
    assert.equal(res.status, 200, await res.clone().text());
    const p = (await res.json()) as { verified: boolean; warnings: string[] };
    assert.equal(p.verified, false);
    assert.ok(p.warnings.some((w) => /not verified yet/.test(w)), JSON.stringify(p.warnings));
  });
});

// ── 4. sizes are measured ────────────────────────────────────────────────────────────────────────

test('extraction counts what it writes and stops above the free-space margin (insufficient_space)', async () => {
  const dest = mkdtempSync(join(work, 'extract-'));
  const total = 200 * 1024 * 1024; // margin: 5 % = 10 MiB
  await unchanged(async () => {
    await assert.rejects(
      extractArchive(good.file, dest, { diskSpace: () => ({ free: 10 * 1024 * 1024 + 512, total }) }),
      (e: Error & { code?: string }) => e.code === 'insufficient_space' && /extraction stopped after .* keeps at least 10\.0 MiB free/.test(e.message),
    );
  });
  rmSync(dest, { recursive: true, force: true });
});

test('a consistent archive that claims a tiny size: the verified manifest gives the real one', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
  const file = forge('claims_small', { metadata: { total_size_bytes: 1000 }, extra: [{ path: `${root}/code/big.bin`, type: 'file', mode: 0o644, data: big }] });
  await unchanged(async () => {
    const v = await verifyArchive(file);
    assert.ok(v.ok, JSON.stringify(v.checks));
    assert.equal(v.metadata!.total_size_bytes, 1000);
    assert.ok(v.content_bytes! > big.length, `measured ${v.content_bytes}`);
  });
});

test('upload: a chunked body is cut off at upload_max_bytes (413) without being read to its end', async () => {
  const limit = 256 * 1024;
  const small = await createRunner({ ...sb.config, upload_max_bytes: limit }, sb.info.config, { services: false, log: () => {} });
  try {
    await unchanged(async () => {
      const boundary = 'keeperboundary';
      let pulled = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x42);
      const total = 50 * 1024 * 1024;
      const body = new ReadableStream<Uint8Array>({
        start(ctrl) {
          ctrl.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n`));
        },
        pull(ctrl) {
          if (pulled >= total) return ctrl.close();
          pulled += chunk.length;
          ctrl.enqueue(new Uint8Array(chunk));
        },
      });
      const res = await small.request('/api/phpborg-backup/upload', {
        method: 'POST',
        headers: { ...auth(), 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
        duplex: 'half',
      } as RequestInit);
      await expectError(res, 413, 'too_large');
      assert.ok(pulled < 4 * 1024 * 1024, `stopped reading after ${pulled} of ${total} bytes`);
    });
  } finally {
    await small.close();
  }
});

test('upload: a body above the limit → 413, nothing left', async () => {
  const small = await createRunner({ ...sb.config, upload_max_bytes: 4096 }, sb.info.config, { services: false, log: () => {} });
  try {
    await unchanged(async () => {
      await expectError(await upload(Buffer.alloc(512 * 1024), 'big.tar.gz', small), 413, 'too_large');
    });
  } finally {
    await small.close();
  }
});

test('upload: junk → 422, nothing left behind', async () => {
  await unchanged(async () => {
    await expectError(await upload(Buffer.from('not an archive, not even gzip'), 'junk.tar.gz'), 422, /not_a_keeper_archive|invalid_archive/);
  });
});

// ── 2. retention never trusts a claimed date ─────────────────────────────────────────────────────

test('upload: an archive dated in the future (beyond clock skew) → 422 future_date', async () => {
  const file = forge('future', { metadata: { backup_date: '2099-01-01T00:00:00.000Z' } });
  await unchanged(async () => {
    const e = await expectError(await upload(readFileSync(file), 'future.tar.gz'), 422, 'future_date');
    assert.match(e.message, /2099-01-01/);
  });
});

test('upload: a genuine past archive is catalogued as uploaded (list, stats)', async () => {
  const date = new Date(Date.now() - 86_400_000).toISOString();
  const file = forge('past', { metadata: { backup_date: date } });
  const res = await upload(readFileSync(file), 'past.tar.gz');
  assert.equal(res.status, 201, await res.clone().text());
  const { backup } = (await res.json()) as { backup: { id: number; origin: string } };
  assert.equal(backup.origin, 'uploaded');
  const list = (await (await api('/api/phpborg-backup/list')).json()) as { items: { id: number; origin: string }[] };
  assert.equal(list.items.find((x) => x.id === backup.id)?.origin, 'uploaded');
  const stats = (await (await api('/api/phpborg-backup/stats')).json()) as { uploaded: number };
  assert.equal(stats.uploaded, 1);
});

// ── 3. the storage path ──────────────────────────────────────────────────────────────────────────

const refusedPaths: [string, () => string, RegExp][] = [
  ['/', () => '/', /system or shared directory itself/],
  ['/etc', () => '/etc', /system tree \/etc/],
  ['/usr/lib/x', () => '/usr/lib/keeper', /system tree \/usr/],
  ['/lib64', () => '/lib64', /\/lib\*/],
  ['/boot', () => '/boot/backups', /system tree \/boot/],
  ['/proc/self', () => '/proc/self', /system tree \/proc/],
  ['/dev/shm', () => '/dev/shm', /system tree \/dev/],
  ['/sys', () => '/sys/kernel', /system tree \/sys/],
  ['/run', () => '/run/keeper', /system tree \/run/],
  ['/var', () => '/var', /shared directory itself/],
  ['/tmp', () => '/tmp/', /shared directory itself/],
  ['/root', () => '/root', /shared directory itself/],
  ['/home', () => '/home', /shared directory itself/],
  ['/opt', () => '/opt', /shared directory itself/],
  ['inside the code dir', () => join(sb.config.paths.code, 'var', 'backups'), /inside phpBorg's code dir/],
  ['the code dir itself', () => sb.config.paths.code, /inside phpBorg's code dir/],
  ['a parent of the code dir', () => dirname(sb.config.paths.code), /contains phpBorg's code dir/],
  ['inside the SSH dir', () => join(sb.config.paths.ssh, 'backups'), /inside phpBorg's SSH dir/],
  ['inside the state dir', () => join(sb.config.paths.state, 'backups'), /inside keeper's state dir/],
  ['inside /etc/phpborg', () => join(sb.config.paths.etc, 'backups'), /inside phpBorg's configuration dir|system tree/],
  ['a symlink to /etc', () => {
    const l = join(work, 'to-etc');
    if (!existsSync(l)) symlinkSync('/etc', l);
    return join(l, 'keeper');
  }, /system tree \/etc/],
  ['relative with ..', () => '/srv/../etc', /absolute path without/],
];
for (const [what, path, reason] of refusedPaths) {
  test(`settings: backup_storage_path = ${what} → 422 naming the key and the reason`, async () => {
    await unchanged(async () => {
      const e = await expectError(await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_storage_path: path() }) }), 422, 'invalid_setting');
      assert.equal(e.key, 'backup_storage_path');
      assert.match(e.message, reason);
    });
  });
}

test('CLI: keeper settings set backup_storage_path /etc → refused, naming the key', async () => {
  await unchanged(async () => {
    const r = await keeperCli(sb, ['--json', 'settings', 'set', 'backup_storage_path', '/etc'], { env: bare });
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /backup_storage_path.*system tree \/etc/);
  });
});

test("a shared pool (phpBorg's /opt/backups, 0775) is only the parent of keeper's own subfolder", async () => {
  const pool = join(work, 'pool');
  mkdirSync(join(pool, 'repo-server1'), { recursive: true });
  writeFileSync(join(pool, 'repo-server1', 'config'), '[repository]\n');
  chmodSync(pool, 0o775);
  const poolBefore = parentsOf(pool);
  const original = storagePath();
  let res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_storage_path: pool }) });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as { backup_storage_path: string }).backup_storage_path, join(pool, OWN_SUBDIR));
  const j = await jobOf(await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  const made = j.result as { file: string };
  assert.equal(dirname(made.file), join(pool, OWN_SUBDIR));
  assert.deepEqual(readdirSync(pool).sort(), [OWN_SUBDIR, 'repo-server1'], 'nothing written beside the repositories');
  assert.deepEqual(parentsOf(pool), poolBefore, "the pool's mode and owner (and its parents') are unchanged");
  assert.equal(statSync(join(pool, OWN_SUBDIR)).mode & 0o777, 0o700);
  res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_storage_path: original }) });
  assert.equal(res.status, 200);
  assert.equal(storagePath(), original, 'a 0700 dir keeper made is used as it is');
});

test("seeding from phpBorg's settings row: its pool becomes keeper's subfolder; /etc is skipped with the reason", async () => {
  const pool = join(work, 'pool-seed');
  mkdirSync(pool, { mode: 0o775 });
  chmodSync(pool, 0o775);
  for (const [value, want] of [[pool, join(pool, OWN_SUBDIR)], ['/etc', sb.config.paths.storage]] as const) {
    const f = join(work, `seed-${randomBytes(3).toString('hex')}.sqlite`);
    const l = openLedger(f);
    try {
      const r = seedSettings(l, [{ key: 'backup_storage_path', value }], new Date(), storagePolicy(sb.config));
      assert.equal(getSettings(l, sb.config.paths.storage).backup_storage_path, want);
      if (value === '/etc') assert.match(r.skipped[0]?.reason ?? '', /backup_storage_path: refused: .*system tree \/etc/);
    } finally {
      l.close();
    }
  }
  assert.equal(statSync(pool).mode & 0o777, 0o775);
  assert.deepEqual(readdirSync(pool), [], 'seeding creates nothing');
});

// ── 7. small leaks ───────────────────────────────────────────────────────────────────────────────

for (const key of ['__proto__', 'constructor', 'hasOwnProperty', 'toString']) {
  test(`settings: "${key}" as a key → 422 naming it (not a 500)`, async () => {
    await unchanged(async () => {
      const e = await expectError(await api('/api/phpborg-backup/settings', { method: 'PUT', body: `{"${key}": {"backup_retention_count": 1}}` }), 422, 'invalid_setting');
      assert.equal(e.key, key);
    });
  });
}

test('401: a token signed with another secret is never repeated in the answer', async () => {
  const forged = await accessToken(`wrong-secret-${randomBytes(16).toString('hex')}`, { roles: ['ROLE_ADMIN'] });
  await unchanged(async () => {
    const res = await runner.request('/api/phpborg-backup/list', { headers: { authorization: `Bearer ${forged}` } });
    const text = await res.clone().text();
    await expectError(res, 401, 'invalid_token');
    for (const part of [forged, ...forged.split('.')]) assert.ok(!text.includes(part), `the body repeats part of the token: ${text}`);
  });
});

test('401: a malformed token is never repeated either', async () => {
  const junk = `not.a-${randomBytes(12).toString('hex')}.jwt`;
  await unchanged(async () => {
    const res = await runner.request('/api/phpborg-backup/list', { headers: { authorization: `Bearer ${junk}` } });
    const text = await res.clone().text();
    assert.equal(res.status, 401, text);
    assert.ok(!text.includes(junk.split('.')[1]), text);
  });
});

test('JSON bodies: a declared body above 1 MiB → 413', async () => {
  await unchanged(async () => {
    const body = JSON.stringify({ backup_storage_path: 'x'.repeat(2 * 1024 * 1024) });
    await expectError(await api('/api/phpborg-backup/settings', { method: 'PUT', body }), 413, 'too_large');
  });
});

test('JSON bodies: a chunked body is cut off past 1 MiB (413), not read to its end', async () => {
  await unchanged(async () => {
    let pulled = 0;
    const total = 64 * 1024 * 1024;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (pulled >= total) return ctrl.close();
        pulled += 64 * 1024;
        ctrl.enqueue(new Uint8Array(64 * 1024).fill(0x20));
      },
    });
    const res = await runner.request('/api/phpborg-backup/settings', { method: 'PUT', headers: { ...auth(), 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
    await expectError(res, 413, 'too_large');
    assert.ok(pulled < 4 * 1024 * 1024, `read ${pulled} bytes`);
  });
});

// ── 6. emergency arguments ───────────────────────────────────────────────────────────────────────

test('emergency: digits that are no backup id fall back to a name match', async () => {
  const time = /-(\d{6})-manual\.tar\.gz$/.exec(good.file)![1];
  await unchanged(async () => {
    // no terminal and no --yes: it shows what it picked, then stops
    const r = await emergency([time]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.ok(r.stdout.includes(`Selected backup: ${good.file.split('/').pop()}`), r.stdout + r.stderr);
    assert.match(r.stderr, /Not a terminal: give the backup and --yes/);
  });
});

test('emergency: digits that match neither an id nor a name → a clear error', async () => {
  await unchanged(async () => {
    const r = await emergency(['987654321', '--yes']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /Backup not found: 987654321 .*no file name contains it/);
  });
});

test('emergency: an archive copied elsewhere without its sidecars is restored (checked against its own manifest)', async () => {
  const dir = mkdtempSync(join(work, 'usb-'));
  const copy = join(dir, 'copied-without-sidecars.tar.gz');
  copyFileSync(good.file, copy);
  const before = await installSnapshot(sb);
  const r = await emergency([copy, '--yes']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /0 expected/);
  const after = await installSnapshot(sb);
  assert.deepEqual(after.code, before.code);
  assert.deepEqual(after.tables, before.tables);
});

// ── 2. retention (last: it deletes backups on purpose) ──────────────────────────────────────────

test('retention orders by the catalogue, never by claimed dates: backups dated 2099 do not make the new backup delete itself', async () => {
  const md = (await readHead(good.file)).metadata;
  const fakes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const date = new Date(Date.UTC(2099, 0, 1 + i));
    const name = archiveFileName(date, 'manual');
    const file = join(storagePath(), name);
    copyFileSync(good.file, file);
    fakes.push(
      insertCompleted(
        runner.ledger,
        { filename: name, filepath: file, backup_type: 'manual', encrypted: false, created_at: date.toISOString(), created_by: null, created_by_name: 'forged', origin: 'uploaded' },
        completedBackup({ size_bytes: statSync(file).size, sha256: sha(readFileSync(file)), mac: null, sha256_path: null, json_path: null }, md),
      ),
    );
  }
  let res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_retention_count: 2 }) });
  assert.equal(res.status, 200);
  const j = await jobOf(await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  const made = j.result as { id: number; file: string; retention: { deleted: { id: number }[] } };
  assert.ok(existsSync(made.file), 'the new backup is kept');
  assert.ok(!made.retention.deleted.some((d) => d.id === made.id));
  const ids = (runner.ledger.prepare("SELECT id FROM phpborg_backups WHERE backup_type = 'manual' AND status = 'succeeded' ORDER BY id").all() as { id: number }[]).map((r) => r.id);
  assert.deepEqual(ids, [fakes[2], made.id], 'the two newest by catalogue order are kept');
  res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_retention_count: 3 }) });
  assert.equal(res.status, 200);
});
