// keeper audit [--action A] [--page N] [--per-page N] [--json]: the audit log, newest first.
import * as v from 'valibot';
import { listAudit, type AuditPage } from '../../state/audit.ts';
import { AuditQuery } from '../../functions/audit/list.ts';
import { describeValidation } from '../../runtime/errors.ts';
import { usageError, type CliTopCommand } from './framework.ts';
import { localTime } from './time.ts';

export const auditCommand: CliTopCommand = {
  usage:
    'keeper audit [--action A] [--page N] [--per-page N] [--json]\n' +
    '  --action A    only this action ("backup.create") or prefix ("notify.")\n' +
    '  --page N      page N (newest first), default 1\n' +
    '  --per-page N  entries per page, 1-200, default 50',
  options: { action: { type: 'string' }, page: { type: 'string' }, 'per-page': { type: 'string' } },
  positionals: { max: 0 },
  async run(ctx, { values }) {
    const raw: Record<string, string> = {};
    for (const [k, opt] of [['action', 'action'], ['page', 'page'], ['per_page', 'per-page']] as const) {
      const x = values[opt];
      if (typeof x === 'string') raw[k] = x;
    }
    const r = v.safeParse(AuditQuery, raw);
    if (!r.success) throw usageError(describeValidation(r.issues).message.replace(/\bper_page\b/, '--per-page').replace(/^(page|action):/, '--$1:'));
    const page = listAudit(ctx.ledger(), { page: r.output.page, per_page: r.output.per_page ?? 50, action: r.output.action });
    return { ...page, pages: Math.max(1, Math.ceil(page.total / page.per_page)) };
  },
  render(result, ctx) {
    const p = result as AuditPage & { pages: number };
    if (!p.items.length) return ctx.print(p.total ? `page ${p.page} is past the end (${p.pages} page(s))` : 'no audit entries');
    for (const e of p.items) {
      const details = e.details === null || e.details === undefined ? '' : `  ${JSON.stringify(e.details)}`;
      ctx.print(`${localTime(e.at)}  ${e.actor.name.padEnd(14)} ${e.action.padEnd(24)} ${e.outcome.padEnd(10)} ${e.target ?? '-'}${details}`);
    }
    ctx.print(`page ${p.page} of ${p.pages} (${p.total} entries)`);
  },
};
