// The mail notifications as a job-finished listener: the entry points hand it to the platform, so
// API, CLI and scheduled runs all notify.
import type { JobFinishedListener } from '../../runtime/jobs.ts';
import { phpborgDb } from '../../runtime/phpborg-db.ts';
import { notifyJob } from './notify.ts';

export const notifyFinished: JobFinishedListener = async (job, ctx) => {
  // a pool per notification: the CLI must be able to exit, and .env may have changed (restore)
  const db = phpborgDb(ctx.config);
  try {
    await notifyJob({ config: ctx.config, ledger: ctx.ledger, phpborg: db }, job);
  } finally {
    await db.close();
  }
};
