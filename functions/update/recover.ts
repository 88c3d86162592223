// Boot hook (functions/operations.ts): history rows a dead helper left `running` are closed as failed.
import { pidAlive } from '../../state/jobs.ts';
import type { BootContext } from '../../runtime/boot.ts';
import { closeOrphanedUpdates } from '../../state/updates.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export function recoverUpdates(ctx: BootContext): void {
  try {
    const closed = closeOrphanedUpdates(ctx.ledger, new Date().toISOString(), pidAlive);
    if (closed.length) console.error(`[keeper] update history: marked interrupted update(s) ${closed.join(', ')} as failed`);
  } catch (e) {
    console.error(`[keeper] update history recovery failed: ${errorMessage(e)}`);
  }
}
