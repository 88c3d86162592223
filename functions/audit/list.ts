// GET /api/phpborg-backup/audit?page&per_page&action (admin): the audit log, newest first, paged.
// `action` matches exactly ("backup.create") or, ending in ".", as a prefix ("notify.").
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { queryParams } from '../../runtime/errors.ts';
import { listAudit } from '../../state/audit.ts';

const PositiveInt = (max: number, what: string) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,6}$/, `expected ${what}`),
    v.transform(Number),
    v.minValue(1, `expected ${what}`),
    v.maxValue(max, `expected ${what}`),
  );

export const AuditQuery = v.object({
  page: v.optional(PositiveInt(999_999, 'a page number from 1')),
  per_page: v.optional(PositiveInt(200, 'a page size from 1 to 200')),
  action: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$/, 'expected an action such as "backup.create", or a prefix such as "notify."')),
  ),
});

export function auditHandler(c: Context<AppEnv>): Response {
  const q = queryParams(c, AuditQuery);
  const page = listAudit(c.env.ledger, { page: q.page, per_page: q.per_page ?? 50, action: q.action });
  return c.json({ ...page, pages: Math.max(1, Math.ceil(page.total / page.per_page)) });
}
