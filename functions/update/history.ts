// GET /api/phpborg-update/history?limit&offset — updates and manual rollbacks, newest first, from
// the ledger (never from phpBorg's database: a rollback restores that).
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { queryParams } from '../../runtime/errors.ts';
import { listUpdates } from '../../state/updates.ts';

const Int = (max: number, fallback: number) =>
  v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, 'expected a whole number'), v.transform(Number), v.maxValue(max, `expected at most ${max}`)), String(fallback));

export const HistoryQuery = v.object({ limit: Int(200, 50), offset: Int(1_000_000, 0) });

export function getUpdateHistory(c: Context<AppEnv>): Response {
  const q = queryParams(c, HistoryQuery);
  return c.json({ ...listUpdates(c.env.ledger, { limit: Math.max(1, q.limit), offset: q.offset }), limit: q.limit, offset: q.offset });
}
