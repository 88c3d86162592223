// Bare-metal restore against the sandbox. The sandbox is backed up, then turned into a machine with no
// phpBorg: units stopped, database AND its user dropped (MariaDB and Redis keep running), code, SSH,
// /etc/phpborg, phpborg-* sudoers and units, the ledger and the storage dir wiped. Then:
//   - `keeper restore --fresh FILE` with a wrong passphrase: clear message, nothing laid down;
//   - `keeper restore --fresh FILE --passphrase-file F`: tables, code, keys and config equal the
//     backup's, units active, workers run, the archive registered in a new ledger;
//   - wiped again, the setup wizard through the real runner (spawned): 403 without the setup token,
//     status and upload + restore with it, progress over SSE, then 403 once initialized.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { allUnits, maintenanceUnits } from '../runtime/install.ts';
import { ledgerPath } from '../state/ledger.ts';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { installSnapshot, keeperCli, lastJson, passphraseFile, patchConfig, snapshotTree, unitsActive as allUnitsActive } from './support/install.ts';

let sb: Sandbox;
let work: string;
let passFile: string;
let archive: string;
let before0: Awaited<ReturnType<typeof snapshot>>;

const keeper = (...args: string[]) => keeperCli(sb, args);
const tree = snapshotTree;
const snapshot = () => installSnapshot(sb);
const unitsActive = () => allUnitsActive(sb);

/** This sandbox becomes a machine without phpBorg: only MariaDB (no database, no user) and Redis run. */
async function wipe(): Promise<void> {
  const env = sb.readEnv().env;
  const c = sb.config;
  const r = await sb.systemctl('stop', ...allUnits(c, env));
  assert.equal(r.code, 0, r.stderr);
  await sb.rootQuery(`DROP DATABASE IF EXISTS \`${env.DB_NAME}\`; DROP USER IF EXISTS '${env.DB_USER}'@'localhost', '${env.DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES`);
  for (const d of [c.paths.code, c.paths.ssh, c.paths.etc, c.paths.state, c.paths.storage]) rmSync(d, { recursive: true, force: true });
  for (const d of [c.paths.sudoers, c.paths.systemd]) {
    for (const n of readdirSync(d)) if (n.startsWith(c.file_prefix)) rmSync(join(d, n), { recursive: true, force: true });
  }
  const users = await sb.rootQuery<{ n: number }>('SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?', [env.DB_USER]);
  assert.equal(Number(users[0].n), 0);
}

async function restoredEqualsBackup(): Promise<void> {
  const now = await snapshot();
  assert.deepEqual(now.tables, before0.tables, 'every table checksum equals the backup');
  assert.deepEqual(now.code, before0.code, 'code tree equals the backup');
  assert.deepEqual(now.ssh, before0.ssh, 'SSH keys equal the backup');
  assert.deepEqual(now.sudoers, before0.sudoers);
  assert.deepEqual(now.systemd, before0.systemd);
  assert.deepEqual(now.etc, before0.etc);
  for (const [rel, n] of Object.entries(tree(sb.config.paths.ssh))) assert.equal(n.mode, n.type === 'dir' ? 0o700 : n.type === 'file' ? 0o600 : n.mode, `ssh/${rel} mode`);
  await unitsActive();
  const job = await sb.pushJob();
  await sb.waitForJob(job, 'completed', 15_000);
}

before(async () => {
  sb = await startSandbox();
  patchConfig(sb, { health_timeout_s: 15 });
  work = mkdtempSync(join(tmpdir(), 'keeper-bare-metal-test-'));
  passFile = passphraseFile(join(work, 'pass'), 'bare metal passphrase');
  let r = await keeper('settings', 'set-passphrase', '--passphrase-file', passFile, '--enable', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // what the backup holds: stop the workers so nothing writes between the snapshot and the dump
  await sb.systemctl('stop', ...maintenanceUnits(sb.config, sb.env));
  before0 = await snapshot();
  await sb.systemctl('start', ...maintenanceUnits(sb.config, sb.env));
  r = await keeper('backup', 'create', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const file = (lastJson(r.stdout) as { file: string }).file;
  // the operator carries only the archive to the new machine
  archive = join(work, file.split('/').pop()!);
  copyFileSync(file, archive);
});
after(async () => {
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('keeper restore --fresh: wrong passphrase refused with nothing laid down; then the whole install from the archive alone', async () => {
  await wipe();
  const wrong = join(work, 'wrong');
  writeFileSync(wrong, 'not it\n');
  let r = await keeper('restore', '--fresh', archive, '--passphrase-file', wrong, '--json');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const e = lastJson(r.stdout) as { error: { code: string; message: string } };
  assert.equal(e.error.code, 'wrong_passphrase', e.error.message);
  assert.match(e.error.message, /nothing was changed/);
  assert.ok(!existsSync(sb.config.paths.code), 'no code dir laid down');
  const dbs = await sb.rootQuery('SHOW DATABASES LIKE ?', [sb.env.DB_NAME]);
  assert.equal(dbs.length, 0, 'no database created');

  r = await keeper('restore', '--fresh', archive, '--passphrase-file', passFile, '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const res = lastJson(r.stdout) as { outcome: string; backup_row: { id: number; filename: string; origin: string } | null };
  assert.equal(res.outcome, 'succeeded');
  await restoredEqualsBackup();

  // registered in the new ledger, with the archive copied into the storage dir
  assert.ok(res.backup_row, 'registered');
  assert.equal(res.backup_row!.origin, 'fresh');
  const db = new Database(ledgerPath(sb.config.paths.state), { readonly: true });
  try {
    const rows = db.prepare("SELECT filename, filepath, status FROM phpborg_backups WHERE status = 'succeeded'").all() as { filename: string; filepath: string }[];
    assert.deepEqual(rows.map((x) => x.filename), [archive.split('/').pop()]);
    assert.ok(existsSync(rows[0].filepath));
    assert.equal(statSync(rows[0].filepath).mode & 0o777, 0o600);
  } finally {
    db.close();
  }

  // now installed: --fresh refuses
  r = await keeper('restore', '--fresh', archive, '--passphrase-file', passFile, '--json');
  assert.equal(r.code, 1);
  assert.equal((lastJson(r.stdout) as { error: { code: string } }).error.code, 'already_initialized');
});

/** The real runner, spawned; resolves with its URL and the setup token it printed (if any). */
function startRunner(): Promise<{ child: ChildProcess; url: string; token: string | null; out: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'scripts', 'runner.ts'), '--config', sb.info.config], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KEEPER_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const t = setTimeout(() => reject(new Error(`runner did not start: ${out}`)), 30_000);
    const onData = (b: Buffer) => {
      out += b;
      const url = /listening on (http:\/\/\S+)/.exec(out);
      const done = url && (/SETUP_TOKEN=([0-9a-f]{64})/.test(out) || /\(config [^)]+\)\n/.test(out));
      if (url && done) {
        // the token line follows the listening line in the same tick or the next
        setTimeout(() => {
          clearTimeout(t);
          resolve({ child, url: url[1], token: /SETUP_TOKEN=([0-9a-f]{64})/.exec(out)?.[1] ?? null, out: () => out });
        }, 300);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`runner exited ${code}: ${out}`)));
  });
}

async function stopRunner(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

test('setup wizard: 403 without the token; upload + restore as a job with it (SSE progress); 403 once initialized', async () => {
  await wipe();
  const runner = await startRunner();
  try {
    assert.ok(runner.token, `the runner printed a setup token: ${runner.out()}`);
    const tokenFile = join(sb.config.paths.state, 'setup-token');
    assert.equal(readFileSync(tokenFile, 'utf8').trim(), runner.token);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const u = (p: string) => `${runner.url}${p}`;
    const withToken = { 'x-setup-token': runner.token! };

    let res = await fetch(u('/api/setup/status'));
    assert.equal(res.status, 403);
    res = await fetch(u('/api/setup/status'), { headers: { 'x-setup-token': 'f'.repeat(64) } });
    assert.equal(res.status, 403);
    res = await fetch(u('/api/setup/status'), { headers: withToken });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { initialized: boolean }).initialized, false);
    // the query parameter is for EventSource (SSE) only: status refuses it
    res = await fetch(u(`/api/setup/status?setup_token=${runner.token}`));
    assert.equal(res.status, 403, 'status needs the X-Setup-Token header, not ?setup_token=');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'setup_token_required');

    const form = () => {
      const f = new FormData();
      f.set('passphrase', 'bare metal passphrase');
      f.set('file', new Blob([new Uint8Array(readFileSync(archive))]), archive.split('/').pop());
      return f;
    };
    res = await fetch(u('/api/setup/restore'), { method: 'POST', body: form() });
    assert.equal(res.status, 403, 'no token, no restore');
    // a wrong passphrase is refused before any job
    const bad = new FormData();
    bad.set('passphrase', 'wrong one');
    bad.set('file', new Blob([new Uint8Array(readFileSync(archive))]), 'x.tar.gz');
    res = await fetch(u('/api/setup/restore'), { method: 'POST', body: bad, headers: withToken });
    assert.equal(res.status, 422, await res.clone().text());
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'wrong_passphrase');

    res = await fetch(u('/api/setup/restore'), { method: 'POST', body: form(), headers: withToken });
    assert.equal(res.status, 202, await res.clone().text());
    const { job_id, events_url } = (await res.json()) as { job_id: string; events_url: string };

    // progress over SSE until the end event; the events route takes ?setup_token= (EventSource sends no headers)
    res = await fetch(u(`${events_url}${events_url.includes('?') ? '&' : '?'}setup_token=${runner.token}`));
    assert.equal(res.status, 200);
    const sse = await res.text();
    assert.match(sse, /event: progress/);
    assert.match(sse, /restore\.database/);
    const end = /event: end\ndata: (.*)\n/.exec(sse);
    assert.ok(end, sse.slice(-2000));
    const job = JSON.parse(end![1]) as { id: string; status: string; error: unknown };
    assert.equal(job.id, job_id);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    res = await fetch(u(`/api/setup/jobs/${job_id}?setup_token=${runner.token}`));
    assert.equal(res.status, 403, 'the job status route needs the header too');
    res = await fetch(u(`/api/setup/jobs/${job_id}`), { headers: withToken });
    assert.equal(res.status, 200);
    assert.ok(!JSON.stringify(await res.json()).includes('bare metal passphrase'), 'the passphrase never comes back');

    await restoredEqualsBackup();

    // initialized: the wizard is closed, token or not
    res = await fetch(u('/api/setup/status'), { headers: withToken });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'already_initialized');
    res = await fetch(u('/api/setup/restore'), { method: 'POST', body: form(), headers: withToken });
    assert.equal(res.status, 403);
  } finally {
    await stopRunner(runner.child);
  }
  // a runner started on an initialized install prints no token and removes the old one
  const again = await startRunner();
  try {
    assert.equal(again.token, null);
    // the runner removes it after its listening line, once it has found the install initialized
    // (a database round trip): give a loaded machine a few seconds
    const tokenFile = join(sb.config.paths.state, 'setup-token');
    for (let i = 0; i < 50 && existsSync(tokenFile); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!existsSync(tokenFile), 'the old setup token is removed');
  } finally {
    await stopRunner(again.child);
  }
});
