// Task backup.drill: proves a backup restorable without touching the live install. Verify the archive,
// extract it into a scratch dir, import its database.sql into a scratch database on the same MariaDB
// (created and dropped as the admin; never the live database), compare every table's row count with
// the archive's metadata, check the extracted code against the manifest. It runs as an operation with
// no step touching the install, so the journal owns the scratch dir and database: the runner removes
// them whatever happens, and a recovery removes them when the helper was killed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readlink } from 'node:fs/promises';
import { removeTree } from '../../runtime/remove-tree.ts';
import { join } from 'node:path';
import * as v from 'valibot';
import { errorMessage } from '../../runtime/error-message.ts';
import { createScratchDatabase, importIntoScratch, scratchDatabaseName, scratchRowCounts } from '../../runtime/mariadb-admin.ts';
import { runOperation, type OperationContext, type Plan } from '../../runtime/operation/index.ts';
import { defineTask, TaskError, type TaskContext } from '../../runtime/task.ts';
import { lockHolder } from '../../state/jobs.ts';
import { getBackup, lastSucceededBackup, recordDrill } from '../../state/catalog.ts';
import { ENTRY, extractArchive, verifyArchive, type ArchiveMetadata, type Manifest } from '../../archive/index.ts';
import { locateArchive, type Located } from '../restore/locate.ts';

export const DRILL_TASK = 'backup.drill';

export const BackupDrillParams = v.strictObject({
  /** the backup to drill; the newest successful one when absent */
  backup_id: v.optional(v.pipe(v.number('expected a backup id'), v.integer(), v.minValue(1))),
});

export interface DrillTable {
  expected: number | null;
  restored: number | null;
}

export interface DrillResult {
  backup_id: number;
  filename: string;
  passed: boolean;
  tables: Record<string, DrillTable>;
  /** files and links of code/ checked against the manifest */
  code_entries: number;
  duration_ms: number;
  drilled_at: string;
  error?: string;
  failed_step?: string;
}

interface DrillState {
  loc: Located;
  tag: string;
  metadata: ArchiveMetadata | null;
  manifest: Manifest | null;
  scratch: string | null;
  database: string | null;
  tables: Record<string, DrillTable>;
  codeEntries: number;
}

/**
 * A drill is not a maintenance task (it takes no lock, so backups are never refused because of one),
 * but it must not run inside a maintenance window: every step first checks that nobody holds the lock.
 */
function outsideWindow(ctx: TaskContext): void {
  const holder = lockHolder(ctx.ledger, ctx.now());
  if (holder) {
    throw new TaskError('busy', `a maintenance operation is running (job ${holder}): the drill does not run inside a maintenance window`, 'drill.start', { job_id: holder });
  }
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every entry under code/ on disk against the manifest (type, size, SHA-256, link target), and nothing more. */
async function checkCode(dir: string, manifest: Manifest): Promise<number> {
  const wanted = new Map(manifest.entries.filter((e) => e.path === ENTRY.code || e.path.startsWith(`${ENTRY.code}/`)).map((e) => [e.path, e]));
  const seen = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const r = `${rel}/${name}`;
      const st = await lstat(join(dir, r));
      const e = wanted.get(r);
      if (!e) throw new Error(`${r} is on disk but not in the manifest`);
      seen.add(r);
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
      if (type !== e.type) throw new Error(`${r} is a ${type}, the manifest says ${e.type}`);
      if (type === 'dir') await walk(r);
      else if (type === 'symlink') {
        if ((await readlink(join(dir, r))) !== e.linkname) throw new Error(`${r} points elsewhere than the manifest says`);
      } else {
        if (st.size !== e.size) throw new Error(`${r} has ${st.size} bytes, the manifest ${e.size}`);
        if (e.sha256 && (await sha256File(join(dir, r))) !== e.sha256) throw new Error(`${r} does not match its SHA-256 in the manifest`);
      }
    }
  };
  if (wanted.size === 0) return 0;
  await walk(ENTRY.code);
  const missing = [...wanted.keys()].filter((p) => p !== ENTRY.code && !seen.has(p));
  if (missing.length) throw new Error(`${missing.length} code entries of the manifest are missing, e.g. ${missing.slice(0, 3).join(', ')}`);
  return seen.size;
}

function drillPlan(s: DrillState): Plan<DrillState> {
  return {
    kind: 'drill',
    state: s,
    rollbackKey: 'drill.cleanup',
    steps: [
      {
        key: 'drill.verify',
        weight: 25,
        message: (st) => `Verifying ${st.loc.file.split('/').pop()}`,
        async run(op, st) {
          outsideWindow(op);
          const r = await verifyArchive(st.loc.file, { passphrase: st.loc.passphrase, expected: st.loc.expected, signal: op.signal });
          if (!r.ok) {
            const bad = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`);
            throw new TaskError(r.code ?? 'verify_failed', `verification failed: ${bad.join('; ')}`, 'drill.verify');
          }
          st.metadata = r.metadata ?? null;
        },
      },
      {
        key: 'drill.extract',
        weight: 30,
        message: 'Extracting into a scratch directory',
        async run(op, st) {
          outsideWindow(op);
          const dir = join(op.config.paths.state, `drill-${st.tag}`);
          op.ownTemp(dir);
          st.scratch = dir;
          await removeTree(dir);
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const [lo, hi] = op.stepRange();
          const r = await extractArchive(st.loc.file, dir, {
            passphrase: st.loc.passphrase,
            expected: st.loc.expected,
            integrityChecked: true,
            signal: op.signal,
            onProgress: (done, total) => op.progress('drill.extract', lo + ((hi - lo) * done) / Math.max(1, total), 'Extracting into a scratch directory'),
          });
          st.metadata = r.metadata;
          st.manifest = r.manifest;
        },
      },
      {
        key: 'drill.database',
        weight: 30,
        message: 'Importing the database into a scratch database',
        async run(op, st) {
          outsideWindow(op);
          const name = scratchDatabaseName(st.tag);
          // journaled before it exists: a kill from here on leaves it to the recovery, which drops it
          op.ownTemp(name, { database: true });
          st.database = name;
          await createScratchDatabase(op.config, name);
          op.step(0.05, `Importing database.sql into the scratch database ${name}`, { database: name });
          await importIntoScratch(op.config, name, join(st.scratch!, ENTRY.database), { signal: op.signal });
        },
      },
      {
        key: 'drill.tables',
        weight: 5,
        message: 'Comparing every table with the row counts the archive recorded',
        async run(op, st) {
          const expected = st.metadata?.table_row_counts ?? {};
          const restored = await scratchRowCounts(op.config, st.database!);
          const names = [...new Set([...Object.keys(expected), ...Object.keys(restored)])].sort();
          for (const t of names) st.tables[t] = { expected: expected[t] ?? null, restored: restored[t] ?? null };
          const wrong = names.filter((t) => st.tables[t].expected !== st.tables[t].restored);
          if (wrong.length) {
            const what = wrong.map((t) => `${t} (expected ${st.tables[t].expected ?? 'no table'}, restored ${st.tables[t].restored ?? 'no table'})`);
            throw new TaskError('rows_mismatch', `${wrong.length} table(s) differ from the archive's metadata: ${what.slice(0, 5).join(', ')}`, 'drill.tables');
          }
        },
      },
      {
        key: 'drill.code',
        weight: 10,
        message: 'Checking the code against the manifest',
        async run(op, st) {
          outsideWindow(op);
          if (!st.manifest) throw new Error('the archive has no manifest');
          st.codeEntries = await checkCode(st.scratch!, st.manifest);
        },
      },
    ],
  };
}

export async function runDrill(ctx: TaskContext, p: v.InferOutput<typeof BackupDrillParams>): Promise<DrillResult> {
  const t0 = performance.now();
  outsideWindow(ctx);
  const backupId = p.backup_id ?? lastSucceededBackup(ctx.ledger)?.id;
  if (backupId === undefined) throw new TaskError('not_found', 'there is no successful backup to drill yet', 'drill.start', undefined, { changed: false });
  let loc: Located;
  try {
    loc = await locateArchive(ctx.config, ctx.ledger, { backup_id: backupId });
  } catch (e) {
    // an archive that is gone or cannot be opened (no stored passphrase) is not restorable either
    const reason = errorMessage(e);
    const at = ctx.now().toISOString();
    const code = e instanceof TaskError ? e.code : 'drill_failed';
    if (code !== 'not_found') recordDrill(ctx.ledger, backupId, { status: 'failed', at, error: `drill.start: ${reason}` });
    const result: DrillResult = { backup_id: backupId, filename: getBackup(ctx.ledger, backupId)?.filename ?? '', passed: false, tables: {}, code_entries: 0, duration_ms: Math.round(performance.now() - t0), drilled_at: at, error: reason, failed_step: 'drill.start' };
    throw new TaskError(code === 'not_found' ? code : 'drill_failed', `the restore drill of backup ${backupId} cannot start: ${reason}`, 'drill.start', result, { changed: false, cause: e });
  }
  const filename = loc.file.split('/').pop()!;
  ctx.progress('drill.start', 0, `Restore drill of ${filename}`, { backup: filename });
  const s: DrillState = {
    loc,
    tag: `${ctx.jobId.replace(/[^A-Za-z0-9]/g, '').slice(0, 16) || 'job'}${Date.now().toString(36)}`,
    metadata: null,
    manifest: null,
    scratch: null,
    database: null,
    tables: {},
    codeEntries: 0,
  };
  const r = await runOperation(ctx as TaskContext & Partial<OperationContext>, drillPlan(s));
  const at = ctx.now().toISOString();
  const result: DrillResult = {
    backup_id: backupId,
    filename,
    passed: r.outcome === 'succeeded',
    tables: s.tables,
    code_entries: s.codeEntries,
    duration_ms: Math.round(performance.now() - t0),
    drilled_at: at,
  };
  if (r.outcome === 'succeeded') {
    recordDrill(ctx.ledger, backupId, { status: 'passed', at });
    ctx.progress('drill.done', 100, `${filename} is restorable: ${Object.keys(s.tables).length} tables and ${s.codeEntries} code entries match`);
    return result;
  }
  const reason = r.error?.message ?? r.message;
  result.error = reason;
  result.failed_step = r.failed_step;
  // a drill kept out of a maintenance window proved nothing either way: no verdict is recorded
  if (r.error?.code !== 'busy') recordDrill(ctx.ledger, backupId, { status: 'failed', at, error: `${r.failed_step ?? 'drill'}: ${reason}` });
  throw new TaskError(r.error?.code === 'busy' ? 'busy' : 'drill_failed', `the restore drill of ${filename} failed at ${r.failed_step}: ${reason}`, r.failed_step, result, { changed: false });
}

export const backupDrillTask = defineTask({
  name: DRILL_TASK,
  // not a maintenance task: it never touches the live install; it stays out of maintenance windows itself
  params: BackupDrillParams,
  run: runDrill,
});
