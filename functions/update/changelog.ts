// GET /api/phpborg-update/changelog?limit&offset — commits HEAD..<remote>/<branch>, newest first,
// capped at CHANGELOG_MAX per page.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, queryParams } from '../../runtime/errors.ts';
import { GitError } from '../../runtime/git.ts';
import { changelog, CHANGELOG_MAX } from './info.ts';

const Int = (min: number, max: number, fallback: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,9}$/, 'expected a whole number'),
      v.transform(Number),
      v.minValue(min, `expected at least ${min}`),
      v.maxValue(max, `expected at most ${max}`),
    ),
    String(fallback),
  );

export const ChangelogQuery = v.object({
  limit: Int(1, CHANGELOG_MAX, 50),
  offset: Int(0, 1_000_000, 0),
});

export async function getChangelog(c: Context<AppEnv>): Promise<Response> {
  const q = queryParams(c, ChangelogQuery);
  try {
    return c.json(await changelog(c.env.config, q));
  } catch (e) {
    if (e instanceof GitError) throw new HttpError(500, 'git_failed', e.message);
    throw e;
  }
}
