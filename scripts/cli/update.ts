// keeper update status|check|changelog|apply|history|rollback — the same data and tasks as
// /api/phpborg-update/*, through the same helper path and ledger.
import { createInterface } from 'node:readline/promises';
import { changelog, CHANGELOG_MAX, updateStatus, type Changelog, type UpdateStatus } from '../../functions/update/info.ts';
import type { ApplyResult } from '../../functions/update/apply.task.ts';
import type { RollbackPreview, RollbackResult } from '../../functions/update/rollback.task.ts';
import { isSafeRef } from '../../runtime/git.ts';
import { getUpdate, listUpdates, type UpdateRow } from '../../state/updates.ts';
import { renderPreview } from './restore.ts';
import { CliError, runTaskFromCli, usageError, type CliContext, type ParsedArgs, type CliTopGroup } from './framework.ts';
import { localTime } from './time.ts';

function intOption(values: ParsedArgs['values'], name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < min || n > max) throw usageError(`--${name}: got ${JSON.stringify(raw)}; expected ${min}-${max}`);
  return n;
}

function historyId(arg: string | undefined): number {
  if (!arg || !/^[1-9]\d{0,15}$/.test(arg)) throw usageError(`which update? give its history id (keeper update history), got ${JSON.stringify(arg ?? '')}`);
  return Number(arg);
}

function needTerminal(what: string): void {
  if (!process.stdin.isTTY) throw usageError(`not a terminal: add --yes to ${what} without the interactive confirmation`);
}

async function confirm(ctx: CliContext, what: string): Promise<void> {
  needTerminal(what);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Type 'YES' to ${what} (anything else cancels): `);
    if (answer.trim() !== 'YES') throw new CliError('cancelled', `${what} cancelled; nothing was changed`);
  } finally {
    rl.close();
  }
  ctx.info('');
}

function renderStatus(s: UpdateStatus, out: (l: string) => void): void {
  out(`Installed: ${s.installed_version ?? '?'} (commit: ${s.current_short}) on ${s.branch ?? 'a detached HEAD'}`);
  const v = s.versions;
  out(`PHP: ${v.php ?? '-'} | Node: ${v.node ?? '-'} | Borg: ${v.borg ?? '-'} | MariaDB: ${v.mariadb ?? '-'}`);
  if (s.available) {
    out(`Update available: ${s.latest_version ?? s.latest_commit?.slice(0, 7)} — ${s.commits_behind} commit(s) ahead on ${s.remote}/${s.tracked_branch}`);
    if (s.latest_subject) out(`  latest: ${s.latest_subject}`);
    out('  A backup is taken automatically before the update (keeper update apply).');
  } else out(`Up to date with ${s.remote}/${s.tracked_branch}${s.commits_ahead ? ` (${s.commits_ahead} local commit(s) not on the remote)` : ''}`);
  out(`Last check: ${s.last_check ?? 'never'}${s.last_check_ok === false ? ` (failed: ${s.last_check_error})` : ''}`);
}

function renderChangelog(c: Changelog, out: (l: string) => void): void {
  if (!c.total) return out('No new commits.');
  out(`${c.total} commit(s) ahead (showing ${c.offset + 1}–${c.offset + c.commits.length}):`);
  for (const x of c.commits) out(`  ${x.short_hash}  ${x.date.slice(0, 10)}  ${x.subject}  (${x.author})`);
}

function renderHistory(items: UpdateRow[], out: (l: string) => void): void {
  if (!items.length) return out('no updates yet');
  for (const r of items) {
    const from = r.from_version ?? r.from_commit.slice(0, 7);
    const to = r.to_version ?? r.to_commit?.slice(0, 7) ?? '?';
    const why = r.failed_step ? `  at ${r.failed_step}: ${r.error}` : '';
    out(`#${String(r.id).padEnd(4)} ${localTime(r.started_at)}  ${r.kind.padEnd(8)} ${from} → ${to}  ${r.status}${why}  (${r.actor_name ?? '?'}, backup ${r.backup_id ?? '-'})`);
  }
}

export const updateGroup: CliTopGroup = {
  commands: [
    {
      name: 'status',
      summary: 'installed version, tool versions, whether an update is available (local refs only)',
      usage: 'keeper update status [--json]',
      positionals: { max: 0 },
      async run(ctx) {
        return updateStatus(ctx.config(), ctx.ledger());
      },
      render: (r, ctx) => renderStatus(r as UpdateStatus, (l) => ctx.print(l)),
    },
    {
      name: 'check',
      summary: 'fetch the remote branch (a job), then show the status',
      usage: 'keeper update check [--json]',
      positionals: { max: 0 },
      async run(ctx) {
        const job = await runTaskFromCli(ctx, 'update.check', {});
        return { job_id: job.id, ...(job.result as UpdateStatus) };
      },
      render: (r, ctx) => renderStatus(r as UpdateStatus, (l) => ctx.print(l)),
    },
    {
      name: 'changelog',
      summary: 'the commits an update would bring (HEAD..remote/branch), newest first',
      usage: `keeper update changelog [--limit N] [--offset N] [--json]\n  --limit N   at most N commits (1-${CHANGELOG_MAX}, default 50)\n  --offset N  skip the N newest`,
      options: { limit: { type: 'string' }, offset: { type: 'string' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        return changelog(ctx.config(), { limit: intOption(values, 'limit', 50, 1, CHANGELOG_MAX), offset: intOption(values, 'offset', 0, 0, 1_000_000) });
      },
      render: (r, ctx) => renderChangelog(r as Changelog, (l) => ctx.print(l)),
    },
    {
      name: 'apply',
      summary: 'update: pre-checks, backup, fast-forward, dependencies, migrations, restart, health; rolls back by itself',
      usage:
        'keeper update apply [--target REF] [--yes] [--json]\n' +
        '  --target REF  a commit, tag or branch of the configured branch (default: remote/branch)\n' +
        '  --yes         do not ask for YES (needed when not on a terminal)',
      options: { target: { type: 'string' }, yes: { type: 'boolean' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        const target = typeof values.target === 'string' ? values.target : null;
        if (target !== null && !isSafeRef(target)) throw usageError(`--target: "${target}" is not a branch, tag or commit hash`);
        if (!values.yes) {
          needTerminal('update');
          const s = await updateStatus(ctx.config(), ctx.ledger());
          renderStatus(s, (l) => ctx.info(l));
          if (!target && !s.available) ctx.info('(the remote is fetched first; the update stops if nothing is new)');
          await confirm(ctx, 'update');
        }
        const job = await runTaskFromCli(ctx, 'update.apply', { target });
        return { job_id: job.id, ...(job.result as ApplyResult) };
      },
      render(r, ctx) {
        const x = r as ApplyResult;
        ctx.print(x.message);
        if (x.backup) ctx.print(`pre-update backup: ${x.backup.filename} (id ${x.backup.id})`);
        if (x.migrations.length) ctx.print(`migrations: ${x.migrations.join(', ')}`);
      },
    },
    {
      name: 'history',
      summary: 'updates and rollbacks, newest first',
      usage: 'keeper update history [--limit N] [--json]',
      options: { limit: { type: 'string' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        return listUpdates(ctx.ledger(), { limit: intOption(values, 'limit', 20, 1, 500) });
      },
      render: (r, ctx) => renderHistory((r as { items: UpdateRow[] }).items, (l) => ctx.print(l)),
    },
    {
      name: 'rollback',
      summary: "put back the install as it was before an update (restores that update's pre-update backup)",
      usage:
        'keeper update rollback ID [--preview] [--yes] [--force] [--json]\n' +
        '  --preview  show what the rollback would change, change nothing\n' +
        '  --yes      do not ask for YES (needed when not on a terminal)\n' +
        '  --force    go on when phpBorg jobs still run after the drain timeout (never kills them)',
      options: { preview: { type: 'boolean' }, yes: { type: 'boolean' }, force: { type: 'boolean' } },
      positionals: { min: 1, max: 1 },
      async run(ctx, { values, positionals }) {
        const history_id = historyId(positionals[0]);
        if (!getUpdate(ctx.ledger(), history_id)) throw new CliError('not_found', `no update #${history_id} in the history: see keeper update history`);
        if (!values.preview && !values.yes) needTerminal('roll back');
        if (values.preview || !values.yes) {
          const job = await runTaskFromCli(ctx, 'update.rollback_preview', { history_id });
          const p = job.result as RollbackPreview;
          if (values.preview) return p;
          ctx.info(`Rollback of update #${p.update.id} (${p.update.from_version ?? p.update.from_commit.slice(0, 7)} → ${p.update.to_version ?? '?'})`);
          renderPreview(p.preview, (l) => ctx.info(l));
          if (!p.preview.free_space.ok) throw new CliError('insufficient_space', 'not enough free space for the rollback; nothing was changed');
          await confirm(ctx, 'roll back');
        }
        const job = await runTaskFromCli(ctx, 'update.rollback', { history_id, force: !!values.force });
        return { job_id: job.id, ...(job.result as RollbackResult) };
      },
      render(r, ctx) {
        const x = r as Partial<RollbackResult> & Partial<RollbackPreview>;
        if (x.preview) return renderPreview(x.preview, (l) => ctx.print(l));
        ctx.print(x.message ?? 'rolled back');
      },
    },
  ],
};
