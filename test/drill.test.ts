// The restore drill against the sandbox: a good backup passes (every table's row count, the code
// against the manifest) and is recorded in the catalog, status and the history's data; a backup whose
// database.sql breaks the import fails with the reason, and a drill killed with its scratch database
// made is cleaned up by the recovery. Nothing is left behind: no scratch database, no scratch dir, the
// live database untouched. The drill refuses to run inside a maintenance window, and follows a
// scheduled backup on its own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { tableChecksums } from '../runtime/mariadb-import.ts';
import { scratchDatabases } from '../runtime/mariadb-admin.ts';
import { getBackup } from '../state/catalog.ts';
import { getJob, listJobs, type JobView } from '../state/jobs.ts';
import { openOperations } from '../state/operations.ts';
import { archiveBaseName, archiveFileName, ENTRY, extractArchive, writeArchive, type ArchiveMetadata } from '../archive/index.ts';
import { eventsForJob } from '../functions/notify/notify.ts';
import { renderMail } from '../functions/notify/templates.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, jobOf as jobOf_, keeperCli, lastJson } from './support/install.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;

before(async () => {
  sb = await startSandbox();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-drill-test-'));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const jobOf = (res: Response, timeoutMs = 90_000) => jobOf_(runner, res, timeoutMs);

async function backup(): Promise<{ id: number; file: string }> {
  const j = await jobOf(await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({}) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  return j.result as { id: number; file: string };
}

/** Nothing of a drill is left: no scratch database, no scratch dir, no open journal entry. */
async function nothingLeft(): Promise<void> {
  assert.deepEqual(await scratchDatabases(sb.config), [], 'no scratch database left');
  assert.deepEqual(readdirSync(sb.config.paths.state).filter((n) => n.startsWith('drill-')), [], 'no scratch dir left');
  assert.deepEqual(openOperations(runner.ledger).filter((e) => e.kind === 'drill'), [], 'no open drill journal entry');
}

/** The same install, but its database.sql stops half-way with a statement MariaDB refuses. */
async function brokenImportArchive(good: string): Promise<string> {
  const x = join(work, 'x');
  mkdirSync(x, { mode: 0o700 });
  const { metadata } = await extractArchive(good, x);
  const sql = readFileSync(join(x, ENTRY.database), 'utf8');
  const broken = Buffer.from(sql.slice(0, Math.floor(sql.length / 2)).replace(/;[^;]*$/, ';') + '\nTHIS IS NOT SQL AT ALL;\n');
  writeFileSync(join(x, ENTRY.database), broken);
  const date = new Date(Date.parse(metadata.backup_date) - 3600_000);
  const md: ArchiveMetadata = {
    ...metadata,
    backup_date: date.toISOString().replace(/\.\d{3}Z$/, '.000Z'),
    database_size_bytes: broken.length,
    database_sha256: createHash('sha256').update(broken).digest('hex'),
    notes: 'database.sql broken on purpose',
  };
  const out = join(work, 'out');
  mkdirSync(out, { mode: 0o700 });
  const w = await writeArchive({
    dir: out,
    fileName: archiveFileName(date, 'manual'),
    root: archiveBaseName(date),
    passphrase: null,
    sources: [
      { kind: 'buffer', path: ENTRY.metadata, data: Buffer.from(JSON.stringify(md, null, 2) + '\n'), mode: 0o600 },
      { kind: 'file', path: ENTRY.settings, from: join(x, ENTRY.settings) },
      { kind: 'dir', path: 'config', from: join(x, 'config') },
      { kind: 'dir', path: ENTRY.ssh, from: join(x, ENTRY.ssh) },
      { kind: 'file', path: ENTRY.database, from: join(x, ENTRY.database) },
      { kind: 'dir', path: ENTRY.code, from: join(x, ENTRY.code) },
    ],
  });
  return w.file;
}

test('a good backup passes the drill (keeper drill --json): every table and the code match, recorded, nothing left, live database untouched', async () => {
  const good = await backup();
  const live = await tableChecksums(sb.readEnv().env);
  const r = await keeperCli(sb, ['drill', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const d = lastJson(r.stdout) as { backup_id: number; passed: boolean; tables: Record<string, { expected: number; restored: number }>; duration_ms: number; error?: string };
  assert.equal(d.backup_id, good.id, 'the newest successful backup when no id is given');
  assert.equal(d.passed, true);
  assert.equal(d.error, undefined);
  assert.ok(typeof d.duration_ms === 'number' && d.duration_ms > 0);
  const names = Object.keys(d.tables);
  assert.ok(names.includes('servers') || names.length >= 3, `tables: ${names.join(', ')}`);
  for (const [t, c] of Object.entries(d.tables)) assert.equal(c.restored, c.expected, t);
  assert.ok(Object.values(d.tables).some((c) => c.expected > 0), 'some table has rows');

  const row = getBackup(runner.ledger, good.id)!;
  assert.equal(row.drill_status, 'passed');
  assert.ok(row.drill_at);
  await nothingLeft();
  assert.deepEqual(await tableChecksums(sb.readEnv().env), live, 'the live database is untouched');

  // status and the catalog's data (the history table) say when it was last proven restorable
  const st = await keeperCli(sb, ['status', '--json']);
  const proven = (lastJson(st.stdout) as { last_proven_restorable: { backup_id: number; at: string } | null }).last_proven_restorable;
  assert.equal(proven?.backup_id, good.id);
  const stats = (await (await api('/api/phpborg-backup/stats')).json()) as { last_proven_restorable: { id: number } | null };
  assert.equal(stats.last_proven_restorable?.id, good.id);
  const list = (await (await api('/api/phpborg-backup/list')).json()) as { items: { id: number; drill_status: string | null }[] };
  assert.equal(list.items.find((b) => b.id === good.id)?.drill_status, 'passed');
});

test('a backup whose database import breaks fails the drill with the reason (API job and CLI exit 1), recorded, nothing left', async () => {
  const good = await backup();
  const file = await brokenImportArchive(good.file);
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(readFileSync(file))]), file.split('/').pop()!);
  const up = await runner.request('/api/phpborg-backup/upload', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  assert.equal(up.status, 201, await up.clone().text());
  const { backup: b } = (await up.json()) as { backup: { id: number } };

  const job: JobView = await jobOf(await api(`/api/phpborg-backup/${b.id}/drill`, { method: 'POST' }));
  assert.equal(job.status, 'failed');
  assert.equal(job.error?.code, 'drill_failed');
  assert.equal(job.error?.step, 'drill.database');
  assert.match(job.error!.message, /database import failed/);
  await nothingLeft();
  // the administrator is mailed
  const mails = eventsForJob(runner.ledger, job, sb.config.paths.storage);
  assert.deepEqual(mails.map((m) => m.kind), ['drill_failed']);
  const mail = renderMail(mails[0], { lang: 'en', timezone: 'UTC' });
  assert.match(mail.subject, /Restore Drill Failed/);
  assert.match(mail.text, /database import failed/);
  const row = getBackup(runner.ledger, b.id)!;
  assert.equal(row.drill_status, 'failed');
  assert.match(row.drill_error ?? '', /drill\.database: database import failed/);

  const r = await keeperCli(sb, ['drill', String(b.id), '--json']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const d = lastJson(r.stdout) as { backup_id: number; passed: boolean; error?: string };
  assert.equal(d.backup_id, b.id);
  assert.equal(d.passed, false);
  assert.match(d.error ?? '', /database import failed/);
  await nothingLeft();
});

test('a drill killed with its scratch database made: the recovery drops it and removes the scratch dir', async () => {
  const good = await backup();
  const r = await keeperCli(sb, ['drill', String(good.id), '--json'], { env: { ...process.env, KEEPER_TEST_TASKS: '1', KEEPER_FAULT_STEP: 'drill.database#2' } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const e = lastJson(r.stdout) as { error: { code: string; message: string } };
  assert.equal(e.error.code, 'interrupted', e.error.message);
  assert.match(e.error.message, /nothing was changed|temporaries were removed/);
  // the helper died with both made: the recovery, not the drill, removed them
  const removed = (getJob(runner.ledger, (e.error as unknown as { job_id: string }).job_id)?.error?.details as { removed: string[] }).removed;
  assert.ok(removed.some((p) => /^database keeper_drill_/.test(p)), `scratch database dropped by the recovery: ${removed.join(', ')}`);
  assert.ok(removed.some((p) => p.startsWith(join(sb.config.paths.state, 'drill-'))), 'scratch dir removed by the recovery');
  await nothingLeft();
});

test('no drill inside a maintenance window; a scheduled backup is followed by its drill', async () => {
  const started = runner.jobs.start('backup.create', { type: 'scheduled' }, { id: null, name: 'scheduler' });
  assert.ok(started.ok);
  const latest = runner.ledger.prepare("SELECT id FROM phpborg_backups WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1").get() as { id: number };
  const busy = await api(`/api/phpborg-backup/${latest.id}/drill`, { method: 'POST' });
  assert.equal(busy.status, 409, await busy.clone().text());
  assert.equal(((await busy.json()) as { error: { code: string } }).error.code, 'busy');

  const bk = await runner.jobs.wait(started.jobId, 90_000);
  assert.equal(bk.status, 'succeeded', JSON.stringify(bk.error));
  const drill = listJobs(runner.ledger, { type: 'backup.drill', limit: 1 })[0];
  assert.ok(drill && drill.created_at >= bk.finished_at!, 'a drill was started after the scheduled backup');
  assert.deepEqual(drill.params, { backup_id: (bk.result as { id: number }).id });
  const done = await runner.jobs.wait(drill.id, 90_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  await nothingLeft();
});
