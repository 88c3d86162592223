// keeper drill [ID] — proves a backup restorable (the newest successful one when no ID) in a scratch
// dir and a scratch database, through the same task as the API. With --json the last line is the
// drill's result; the exit status is 0 only when it passed.
import { runTaskFromCli, CliError, usageError, type CliTopCommand } from './framework.ts';
import { getJob } from '../../state/jobs.ts';
import type { DrillResult } from '../../functions/backup/drill.task.ts';

export const drillCommand: CliTopCommand = {
  usage:
    'keeper drill [ID] [--json]\n' +
    '  ID  the backup to drill (default: the newest successful one)\n' +
    '  verify → extract to a scratch dir → import into a scratch database → compare row counts → check the code; cleaned up whatever happens',
  positionals: { max: 1 },
  async run(ctx, { positionals }) {
    const raw = positionals[0];
    if (raw !== undefined && !/^[1-9]\d{0,15}$/.test(raw)) throw usageError(`expected a backup id (see keeper backup list), got ${JSON.stringify(raw)}`);
    try {
      const job = await runTaskFromCli(ctx, 'backup.drill', raw === undefined ? {} : { backup_id: Number(raw) });
      return job.result as DrillResult;
    } catch (e) {
      // a drill that ran and failed is a result (passed: false), not a usage error
      if (e instanceof CliError && e.code === 'drill_failed' && typeof e.extra.job_id === 'string') {
        const details = getJob(ctx.ledger(), e.extra.job_id)?.error?.details as DrillResult | undefined;
        if (details && typeof details.backup_id === 'number') return details;
      }
      throw e;
    }
  },
  render(r, ctx) {
    const d = r as DrillResult;
    const tables = Object.entries(d.tables);
    for (const [name, t] of tables) ctx.print(`  ${t.expected === t.restored ? 'ok ' : 'ERR'} ${name.padEnd(32)} expected ${t.expected ?? '-'}, restored ${t.restored ?? '-'}`);
    if (d.passed) ctx.print(`backup ${d.backup_id} (${d.filename}) is restorable: ${tables.length} tables and ${d.code_entries} code entries match (${d.duration_ms} ms)`);
    else ctx.print(`backup ${d.backup_id} (${d.filename}) FAILED the restore drill at ${d.failed_step ?? '?'}: ${d.error ?? 'failed'}`);
  },
};
