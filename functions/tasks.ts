// THE task registry: name → TaskDef. The helper runs only what is listed here.
// Add a task with ONE line in the table (keep it sorted by area).
import type { TaskDef } from '../runtime/task.ts';
import { testTasks } from '../runtime/helper/test-tasks.ts';
import { servicesTask } from './system/services.task.ts';
import { backupCreateTask } from './backup/create.task.ts';
import { backupVerifyTask } from './backup/verify.task.ts';
import { backupDrillTask } from './backup/drill.task.ts';
import { restorePreviewTask } from './restore/preview.task.ts';
import { backupRestoreTask } from './restore/restore.task.ts';
import { checkTask } from './update/check.task.ts';
import { applyTask } from './update/apply.task.ts';
import { rollbackPreviewTask, rollbackTask } from './update/rollback.task.ts';
import { setupRestoreTask } from './setup/restore.task.ts';
import { recoverTask } from './operation/recover.task.ts';
import { offsitePushTask, offsiteTestTask } from './offsite/tasks.ts';

const tasks: Record<string, TaskDef> = {
  // system
  'system.services': servicesTask,
  // backup
  'backup.create': backupCreateTask,
  'backup.drill': backupDrillTask,
  // off-site copies
  'offsite.push': offsitePushTask,
  'offsite.test': offsiteTestTask,
  // restore
  'backup.verify': backupVerifyTask,
  'backup.restore_preview': restorePreviewTask,
  'backup.restore': backupRestoreTask,
  // update
  'update.check': checkTask,
  'update.apply': applyTask,
  'update.rollback': rollbackTask,
  'update.rollback_preview': rollbackPreviewTask,
  // setup
  'setup.restore': setupRestoreTask,
  // recovery of an operation whose process died
  'operation.recover': recoverTask,
};

/** The task named `name`; test-only tasks are visible only with KEEPER_TEST_TASKS=1 in this process. */
export function getTask(name: string): TaskDef | undefined {
  if (Object.hasOwn(tasks, name)) return tasks[name];
  if (process.env.KEEPER_TEST_TASKS === '1' && Object.hasOwn(testTasks, name)) return testTasks[name];
  return undefined;
}

export function taskNames(): string[] {
  return Object.keys(tasks);
}
