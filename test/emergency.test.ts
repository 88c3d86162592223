// scripts/emergency-restore against the sandbox, spawned as a real process (the runner is not running):
// refusals first (not root, missing file, wrong passphrase, corrupt archive: clear message, nothing
// changed); then the day everything broke — database dropped, MariaDB stopped, src/ and .env deleted —
// restored from an encrypted backup: tables and code equal the backup's, units active, the workers
// process a new job, exit 0, the safety copy and the audit entry in the ledger; then the same with the
// ledger deleted (the backup found through its sidecar, a new ledger rebuilt from the sidecars).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ledgerPath } from '../state/ledger.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { installSnapshot, keeperCli, lastJson, passphraseFile, patchConfig, scriptPath, spawnOut, unitsActive as allUnitsActive } from './support/install.ts';
import { noteText } from '../functions/backup/auto-notes.ts';

let sb: Sandbox;
let work: string;
let passFile: string;
let backupId: number;
let backupFile: string;
let before0: Awaited<ReturnType<typeof snapshot>>;

// the scripts run with a bare environment, as from a root shell on a broken machine
const bare = { PATH: process.env.PATH ?? '', HOME: '/tmp' };
const run = (cmd: string, args: string[], opts: { prefix?: string[] } = {}) => spawnOut(cmd, args, { ...opts, env: bare });
const keeper = (...args: string[]) => keeperCli(sb, args, { env: bare });
const emergency = (...args: string[]) => run(scriptPath('emergency-restore'), [...args, '--config', sb.info.config]);

/** code, SSH keys (content) and tables: what the emergency restore puts back. */
async function snapshot() {
  const s = await installSnapshot(sb);
  return { code: s.code, ssh: s.ssh, tables: s.tables };
}
const unitsActive = () => allUnitsActive(sb);

/** The worst case the emergency restore is for: database dropped, MariaDB stopped, src/ and .env deleted. */
async function breakEverything(): Promise<void> {
  await sb.rootQuery(`DROP DATABASE \`${sb.env.DB_NAME}\``);
  const r = await sb.systemctl('stop', 'mariadb');
  assert.equal(r.code, 0, r.stderr);
  rmSync(join(sb.config.paths.code, 'src'), { recursive: true, force: true });
  rmSync(join(sb.config.paths.code, '.env'), { force: true });
}

before(async () => {
  sb = await startSandbox();
  patchConfig(sb, { health_timeout_s: 15 });
  work = mkdtempSync(join(tmpdir(), 'keeper-emergency-test-'));
  passFile = passphraseFile(join(work, 'pass'), 'correct horse battery staple');
  let r = await keeper('settings', 'set-passphrase', '--passphrase-file', passFile, '--enable', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  before0 = await snapshot();
  r = await keeper('backup', 'create', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const res = lastJson(r.stdout) as { id: number; file: string; encrypted: boolean };
  assert.equal(res.encrypted, true);
  backupId = res.id;
  backupFile = res.file;
});
after(async () => {
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('refusals: not root, missing file, wrong passphrase, corrupt archive — clear message, nothing changed', async () => {
  const nobody = await run(scriptPath('emergency-restore'), [String(backupId), '--yes', '--config', sb.info.config], {
    prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
  });
  assert.equal(nobody.code, 1, nobody.stdout + nobody.stderr);
  assert.match(nobody.stderr, /must be run as root/);

  const missing = await emergency(join(work, 'nope.tar.gz'), '--yes', '--passphrase-file', passFile);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not found/i);

  const wrong = join(work, 'wrong');
  writeFileSync(wrong, 'not the passphrase\n');
  const w = await emergency(String(backupId), '--yes', '--passphrase-file', wrong);
  assert.equal(w.code, 1, w.stdout + w.stderr);
  assert.match(w.stdout, /wrong passphrase/i);
  assert.match(w.stdout, /nothing was changed/i);

  // one flipped byte in the middle of the archive itself
  const fd = openSync(backupFile, 'r+');
  const at = Math.floor(lstatSync(backupFile).size / 2);
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  writeSync(fd, Buffer.from([b[0] ^ 0xff]), 0, 1, at);
  try {
    const c = await emergency(String(backupId), '--yes', '--passphrase-file', passFile);
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(c.stdout, /nothing was changed/i);
    assert.match(c.stdout, /sha-?256|corrupt|hmac/i);
  } finally {
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
  }
  assert.deepEqual(await snapshot(), before0, 'nothing changed');
  await unitsActive();
  assert.ok(!readdirSync(sb.config.paths.storage).some((n) => n.includes('pre_emergency_restore')), 'no safety copy was taken');
});

test('database and its user dropped, MariaDB stopped, src/ and .env gone → everything back, workers run, exit 0', async () => {
  // the database's user goes too: the emergency restore recreates both from the backup's .env
  await sb.rootQuery(`DROP USER IF EXISTS '${sb.env.DB_USER}'@'localhost', '${sb.env.DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES`);
  await breakEverything();
  const r = await emergency(String(backupId), '--yes', '--passphrase-file', passFile);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /created user /, 'the user was recreated');
  assert.match(r.stdout, /\[1\/11\] emergency\.read: Reading the backup/);
  assert.match(r.stdout, /\[6\/11\] restore\.database: Restoring the database/);
  assert.match(r.stdout, /database NOT included/);
  assert.match(r.stdout, /Emergency restore completed/);
  assert.match(r.stdout, /✓ Database/);

  const now = await snapshot();
  assert.deepEqual(now.tables, before0.tables, 'every table checksum equals the backup');
  assert.deepEqual(now.code, before0.code, 'code tree equals the backup');
  assert.deepEqual(now.ssh, before0.ssh);
  await unitsActive();
  const job = await sb.pushJob();
  await sb.waitForJob(job, 'completed', 15_000);

  // the ledger records the safety copy and the operation
  const db = new Database(ledgerPath(sb.config.paths.state), { readonly: true });
  try {
    const safety = db.prepare("SELECT * FROM phpborg_backups WHERE backup_type = 'pre_emergency_restore'").all() as { status: string; filepath: string; notes: string }[];
    assert.equal(safety.length, 1);
    assert.equal(safety[0].status, 'succeeded');
    assert.ok(existsSync(safety[0].filepath));
    assert.match(noteText(safety[0].notes)!, /database NOT included/);
    const a = db.prepare("SELECT outcome FROM audit_log WHERE action = 'emergency.restore' ORDER BY id").all() as { outcome: string }[];
    // the wrong passphrase and the corrupt archive were refused; then the restore succeeded
    assert.deepEqual(a.map((x) => x.outcome), ['refused', 'refused', 'succeeded']);
  } finally {
    db.close();
  }
});

test('ledger deleted: the backup is found through its sidecar; a new ledger is rebuilt from the sidecars', async () => {
  const lp = ledgerPath(sb.config.paths.state);
  for (const f of [lp, `${lp}-wal`, `${lp}-shm`]) rmSync(f, { force: true });
  await breakEverything();
  const name = backupFile.split('/').pop()!;
  const r = await emergency(name.replace(/\.tar\.gz$/, ''), '--yes', '--passphrase-file', passFile);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /through their sidecars/);
  assert.match(r.stdout, /Emergency restore completed/);
  const now = await snapshot();
  assert.deepEqual(now.tables, before0.tables);
  assert.deepEqual(now.code, before0.code);
  await unitsActive();
  const job = await sb.pushJob();
  await sb.waitForJob(job, 'completed', 15_000);
  const db = new Database(lp, { readonly: true });
  try {
    const names = (db.prepare("SELECT filename FROM phpborg_backups WHERE status = 'succeeded'").all() as { filename: string }[]).map((x) => x.filename);
    assert.ok(names.includes(name), 'the restored archive is in the new catalog');
    assert.equal(names.filter((n) => n.includes('pre_emergency_restore')).length, 2, 'both safety copies are listed');
  } finally {
    db.close();
  }
});

test('ledger corrupt: left byte-identical, the restore still runs from the sidecars', async () => {
  const lp = ledgerPath(sb.config.paths.state);
  for (const f of [`${lp}-wal`, `${lp}-shm`]) rmSync(f, { force: true });
  writeFileSync(lp, 'this is not an SQLite database\n'.repeat(100));
  const garbage = readFileSync(lp);
  await breakEverything();
  const name = backupFile.split('/').pop()!;
  const r = await emergency(name, '--yes', '--passphrase-file', passFile);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /is corrupt/);
  assert.match(r.stdout, /left untouched/);
  assert.deepEqual(readFileSync(lp), garbage, 'the corrupt ledger is kept as it was');
  const now = await snapshot();
  assert.deepEqual(now.tables, before0.tables);
  assert.deepEqual(now.code, before0.code);
  await unitsActive();
});
