// GET /api/phpborg-update/status — installed version, tool versions, what the remote-tracking ref
// holds. Local refs only: `POST /api/phpborg-update/check` is what fetches.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import { GitError } from '../../runtime/git.ts';
import { updateStatus } from './info.ts';

export async function getUpdateStatus(c: Context<AppEnv>): Promise<Response> {
  try {
    return c.json(await updateStatus(c.env.config, c.env.ledger));
  } catch (e) {
    if (e instanceof GitError) {
      throw new HttpError(500, 'git_failed', `cannot read the code dir ${c.env.config.paths.code} as a git checkout: ${e.message}`);
    }
    throw e;
  }
}
