// keeper jobs show ID | keeper jobs list
import { getJob, getJobLog, listEvents, listJobs, type JobView } from '../../state/jobs.ts';
import { CliError, usageError, type CliContext, type CliTopGroup } from './framework.ts';
import { localTime } from './time.ts';

function renderJob(j: JobView & { log?: string; events?: unknown[] }, ctx: CliContext): void {
  ctx.print(`job      ${j.id}`);
  ctx.print(`type     ${j.type}`);
  ctx.print(`status   ${j.status}  ${Math.round(j.percent)}%${j.step ? `  (${j.step})` : ''}`);
  if (j.message) ctx.print(`message  ${j.message}`);
  ctx.print(`by       ${j.actor.name}`);
  ctx.print(`created  ${localTime(j.created_at)}${j.started_at ? `  started ${localTime(j.started_at)}` : ''}${j.finished_at ? `  finished ${localTime(j.finished_at)}` : ''}`);
  if (j.error) ctx.print(`error    [${j.error.code}] ${j.error.message}${j.error.step ? ` at ${j.error.step}` : ''}`);
  if (j.result !== null && j.result !== undefined) ctx.print(`result   ${JSON.stringify(j.result, null, 2).replace(/\n/g, '\n         ')}`);
  if (j.log) ctx.print(`log:\n${j.log.trimEnd()}`);
}

export const jobsGroup: CliTopGroup = {
  commands: [
    {
      name: 'show',
      summary: 'one job: status, step, result or error, log',
      usage: 'keeper jobs show ID [--events] [--json]\n  --events  also list every recorded event',
      options: { events: { type: 'boolean' } },
      positionals: { min: 1, max: 1 },
      async run(ctx, { values, positionals }) {
        const id = positionals[0];
        if (!id) throw usageError('which job? keeper jobs show ID');
        const ledger = ctx.ledger();
        const job = getJob(ledger, id);
        if (!job) throw new CliError('not_found', `no job ${id}`);
        return { ...job, log: getJobLog(ledger, id) ?? '', ...(values.events ? { events: listEvents(ledger, id).map((e) => ({ seq: e.seq, at: e.at, ...e.data })) } : {}) };
      },
      render: (r, ctx) => renderJob(r as JobView & { log?: string }, ctx),
    },
    {
      name: 'list',
      summary: 'the newest jobs',
      usage: 'keeper jobs list [--limit N] [--type TASK] [--json]',
      options: { limit: { type: 'string' }, type: { type: 'string' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        const limit = values.limit === undefined ? 20 : Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw usageError(`--limit: got ${JSON.stringify(values.limit)}; expected 1-500`);
        return { items: listJobs(ctx.ledger(), { limit, type: typeof values.type === 'string' ? values.type : undefined }) };
      },
      render(r, ctx) {
        const { items } = r as { items: JobView[] };
        if (!items.length) return ctx.print('no jobs yet');
        for (const j of items) ctx.print(`${localTime(j.created_at)}  ${j.id}  ${j.type.padEnd(18)} ${j.status.padEnd(11)} ${Math.round(j.percent)}%  ${j.actor.name}`);
      },
    },
  ],
};
