// Task update.check: `git fetch` of the configured remote branch, then the same report as
// GET /api/phpborg-update/status. Not a maintenance task: it changes only remote-tracking refs.
import * as v from 'valibot';
import { defineTask, TaskError } from '../../runtime/task.ts';
import { fetch } from '../../runtime/git.ts';
import { setLastCheck } from '../../state/updates.ts';
import { updateStatus, type UpdateStatus } from './info.ts';
import { giveBackToOwner } from './ownership.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const CheckParams = v.strictObject({});

export const checkTask = defineTask({
  name: 'update.check',
  params: CheckParams,
  async run(ctx): Promise<UpdateStatus> {
    const { remote, branch } = ctx.config.git;
    ctx.progress('update.fetch', 10, `Fetching ${remote}/${branch}`, { remote, branch });
    try {
      await fetch(ctx.config.paths.code, remote, branch, {
        signal: ctx.signal,
        onLine: (l) => l.trim() && ctx.log('info', l),
      });
      await giveBackToOwner(ctx.config);
    } catch (e) {
      const error = errorMessage(e);
      setLastCheck(ctx.ledger, { at: ctx.now().toISOString(), ok: false, error });
      throw new TaskError('fetch_failed', `cannot fetch ${remote}/${branch}: ${error}`, 'update.fetch');
    }
    setLastCheck(ctx.ledger, { at: ctx.now().toISOString(), ok: true });
    ctx.progress('update.status', 80, 'Comparing with the installed version');
    const s = await updateStatus(ctx.config, ctx.ledger);
    ctx.progress('update.status', 100, s.available ? `${s.commits_behind} new commit(s) available` : 'Up to date', {
      commits_behind: s.commits_behind,
      available: s.available,
    });
    return s;
  },
});
