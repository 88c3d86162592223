// THE task registry: name → whether it holds the maintenance lock, and how to load its code.
// Add a task with ONE entry in the table (keep it sorted by area).
// Each task's module is imported only when it runs: the helper, bundled with one chunk per task, then
// holds that task's dependencies alone, and the runner and the CLI hold none of them.
import type { TaskDef, TaskEntry } from '../runtime/task.ts';
import { testTasks } from '../runtime/helper/test-tasks.ts';

const task = (maintenance: boolean, load: () => Promise<TaskDef>): TaskEntry => ({ maintenance, load });

const tasks: Record<string, TaskEntry> = {
  // system
  'system.services': task(false, async () => (await import('./system/services.task.ts')).servicesTask),
  // backup
  'backup.create': task(true, async () => (await import('./backup/create.task.ts')).backupCreateTask),
  'backup.drill': task(false, async () => (await import('./backup/drill.task.ts')).backupDrillTask),
  // off-site copies
  'offsite.push': task(false, async () => (await import('./offsite/tasks.ts')).offsitePushTask),
  'offsite.test': task(false, async () => (await import('./offsite/tasks.ts')).offsiteTestTask),
  // restore
  'backup.verify': task(false, async () => (await import('./backup/verify.task.ts')).backupVerifyTask),
  'backup.restore_preview': task(false, async () => (await import('./restore/preview.task.ts')).restorePreviewTask),
  'backup.restore': task(true, async () => (await import('./restore/restore.task.ts')).backupRestoreTask),
  // update
  'update.check': task(false, async () => (await import('./update/check.task.ts')).checkTask),
  'update.apply': task(true, async () => (await import('./update/apply.task.ts')).applyTask),
  'update.rollback': task(true, async () => (await import('./update/rollback.task.ts')).rollbackTask),
  'update.rollback_preview': task(false, async () => (await import('./update/rollback.task.ts')).rollbackPreviewTask),
  // setup
  'setup.restore': task(true, async () => (await import('./setup/restore.task.ts')).setupRestoreTask),
  // recovery of an operation whose process died
  'operation.recover': task(true, async () => (await import('./operation/recover.task.ts')).recoverTask),
};

/** The task named `name`; test-only tasks are visible only with KEEPER_TEST_TASKS=1 in this process. */
export function getTask(name: string): TaskEntry | undefined {
  if (Object.hasOwn(tasks, name)) return tasks[name];
  if (process.env.KEEPER_TEST_TASKS === '1' && Object.hasOwn(testTasks, name)) return testTasks[name];
  return undefined;
}

export function taskNames(): string[] {
  return Object.keys(tasks);
}
