// keeper backup create|list|show|delete|stats — the same data and the same task as the API.
import { runTaskFromCli, CliError, usageError, type CliContext, type CliTopGroup } from './framework.ts';
import { catalogStats, getBackup, listBackups, type BackupRow, type CatalogStats } from '../../state/catalog.ts';
import { BACKUP_TYPES } from '../../archive/format.ts';
import { backupView } from '../../functions/backup/catalog.ts';
import { BackupRemovalRefused, deletionWarnings, removalBlocker, removeBackup } from '../../functions/backup/remove.ts';
import { createInterface } from 'node:readline/promises';
import { localTime } from './time.ts';
import type { BackupResult } from '../../functions/backup/core.ts';
import { verifyCommand } from './restore.ts';
import { noteText } from '../../functions/backup/auto-notes.ts';

function backupId(raw: string | undefined, ctx: CliContext): BackupRow {
  if (!raw || !/^[1-9]\d{0,15}$/.test(raw)) throw usageError(`expected a backup id (see keeper backup list), got ${JSON.stringify(raw ?? '')}`);
  const row = getBackup(ctx.ledger(), Number(raw));
  if (!row) throw new CliError('not_found', `no backup ${raw}; keeper backup list shows the catalog`);
  return row;
}

/** Deleting cannot be undone: a terminal asks for YES, anything else must say --yes. */
async function confirmDelete(row: BackupRow): Promise<void> {
  if (!process.stdin.isTTY) throw usageError('not a terminal: add --yes to delete without the interactive confirmation');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Type 'YES' to delete backup ${row.id} for good (anything else cancels): `);
    if (answer.trim() !== 'YES') throw new CliError('cancelled', 'delete cancelled; nothing was changed');
  } finally {
    rl.close();
  }
}

function renderBackup(b: ReturnType<typeof backupView>, ctx: CliContext): void {
  const lines: [string, unknown][] = [
    ['id', b.id],
    ['file', b.filepath],
    ['status', b.status],
    ['type', b.backup_type],
    ['created', `${localTime(b.created_at)} by ${b.created_by_name ?? b.created_by ?? '?'}`],
    ['size', `${b.size_human} (${b.size_bytes} bytes)`],
    ['encrypted', b.encrypted ? 'yes' : 'no'],
    ['version', `${b.phpborg_version ?? '?'} (${b.git_commit ?? '?'})`],
    ['sha256', b.hash_sha256],
    ['database', b.database_size_bytes === null ? null : `${b.database_size_bytes} bytes`],
    ['files', b.files_count],
    ['window', b.maintenance_window_ms === null ? null : `${b.maintenance_window_ms} ms`],
    ['pinned', b.pinned ? 'yes' : 'no'],
    ['notes', noteText(b.notes)],
  ];
  for (const [k, v] of lines) if (v !== null && v !== undefined) ctx.print(`${k.padEnd(10)}${v}`);
}

export const backupGroup: CliTopGroup = {
  commands: [
    {
      name: 'create',
      summary: 'back up the whole installation now (code, database, configuration, keys)',
      usage:
        'keeper backup create [--notes TEXT] [--force] [--json]\n' +
        '  --notes TEXT  a note kept with the backup\n' +
        '  --force       go on even if phpBorg jobs are still running after the drain timeout (they are never killed)',
      options: { notes: { type: 'string' }, force: { type: 'boolean' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        const notes = typeof values.notes === 'string' ? values.notes : null;
        const job = await runTaskFromCli(ctx, 'backup.create', { type: 'manual', notes, force: values.force === true });
        return job.result;
      },
      render(r, ctx) {
        const b = r as BackupResult;
        ctx.print(`backup ${b.id} created: ${b.file}`);
        ctx.print(`size ${b.size_human}, ${b.encrypted ? 'encrypted' : 'not encrypted'}, sha256 ${b.sha256}`);
        ctx.print(`maintenance window ${b.maintenance_window_ms} ms, total ${b.duration_ms} ms`);
        if (b.retention.deleted.length) ctx.print(`retention deleted: ${b.retention.deleted.map((d) => d.filename).join(', ')}`);
        for (const w of b.warnings) ctx.print(`warning: ${w}`);
      },
    },
    {
      name: 'list',
      summary: 'the backups, newest first',
      usage: 'keeper backup list [--type TYPE] [--json]',
      options: { type: { type: 'string' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        const type = typeof values.type === 'string' ? values.type : undefined;
        if (type !== undefined && !(BACKUP_TYPES as readonly string[]).includes(type)) {
          throw usageError(`--type: got ${JSON.stringify(type)}; expected one of ${BACKUP_TYPES.join(', ')}`);
        }
        const items = listBackups(ctx.ledger(), { type }).map(backupView);
        return { items, total: items.length };
      },
      render(r, ctx) {
        const { items } = r as { items: ReturnType<typeof backupView>[] };
        if (!items.length) return ctx.print('no backups yet: keeper backup create');
        for (const b of items) {
          ctx.print(
            `${String(b.id).padStart(4)}  ${localTime(b.created_at)}  ${b.size_human.padStart(10)}  ` +
              `${b.backup_type.padEnd(21)} ${(b.phpborg_version ?? '?').padEnd(12)} ${b.encrypted ? 'enc ' : '    '}${b.status.padEnd(9)} ${b.pinned ? 'pinned ' : ''}${b.origin === 'uploaded' ? 'uploaded ' : ''}${b.filename}`,
          );
        }
      },
    },
    {
      name: 'show',
      summary: 'one backup: file, size, hash, versions, window',
      usage: 'keeper backup show ID [--json]',
      positionals: { min: 1, max: 1 },
      async run(ctx, { positionals }) {
        return backupView(backupId(positionals[0], ctx));
      },
      render: (r, ctx) => renderBackup(r as ReturnType<typeof backupView>, ctx),
    },
    {
      name: 'delete',
      summary: 'delete a backup: its file, sidecars and catalog entry (not a pinned or in-use one)',
      usage:
        'keeper backup delete ID [--yes] [--json]\n' +
        '  --yes   do not ask for YES (needed when not on a terminal); a deleted backup cannot be brought back',
      options: { yes: { type: 'boolean' } },
      positionals: { min: 1, max: 1 },
      async run(ctx, { positionals, values }) {
        const row = backupId(positionals[0], ctx);
        const blocked = removalBlocker(ctx.ledger(), row);
        if (blocked) throw new CliError(blocked.code, blocked.message, { id: row.id, ...(blocked.jobId ? { job_id: blocked.jobId } : {}) });
        const warnings = deletionWarnings(ctx.ledger(), row);
        ctx.info(`backup ${row.id}: ${row.filename}, ${row.backup_type}, ${localTime(row.created_at)}`);
        for (const w of warnings) ctx.info(`warning: ${w.message}`);
        if (!values.yes) await confirmDelete(row);
        try {
          await removeBackup(ctx.ledger(), row, ctx.actor, 'delete');
        } catch (e) {
          if (e instanceof BackupRemovalRefused) throw new CliError(e.code, e.message, { id: row.id, ...(e.jobId ? { job_id: e.jobId } : {}) });
          throw e;
        }
        return { deleted: true, id: row.id, filename: row.filename, warnings: warnings.map(({ code, params }) => ({ code, params })) };
      },
      render(r, ctx) {
        const d = r as { id: number; filename: string };
        ctx.print(`deleted backup ${d.id} (${d.filename})`);
      },
    },
    {
      name: 'stats',
      summary: 'totals: count per type, size, encrypted, last success',
      usage: 'keeper backup stats [--json]',
      positionals: { max: 0 },
      async run(ctx) {
        return catalogStats(ctx.ledger());
      },
      render(r, ctx) {
        const s = r as CatalogStats;
        ctx.print(`backups    ${s.total} (${s.total_size_human}), ${s.encrypted} encrypted, ${s.uploaded} uploaded, ${s.failed} failed attempt(s)`);
        ctx.print(`by type    ${Object.entries(s.by_type).map(([k, n]) => `${k} ${n}`).join(', ')}`);
        ctx.print(`last ok    ${s.last_success ? `${localTime(s.last_success.created_at)} ${s.last_success.filename}` : 'never'}`);
      },
    },
    verifyCommand, // keeper backup verify <id|file> (defined in scripts/cli/restore.ts)
  ],
};
