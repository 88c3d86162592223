// What the operations plug into the platform besides the HTTP app (functions/app.ts): the task
// registry, the boot hooks and the job-finished listeners. The entry points hand it to runtime/.
import type { Operations } from '../runtime/boot.ts';
import { getTask } from './tasks.ts';
import { recoverUpdates } from './update/recover.ts';
import { notifyFinished } from './notify/listener.ts';
import { drillAfterScheduledBackup } from './backup/drill-listener.ts';

export const operations: Operations = {
  tasks: getTask,
  boot: [recoverUpdates],
  // the backup's mail first, then its drill
  finished: [notifyFinished, drillAfterScheduledBackup],
};
