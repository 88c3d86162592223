// THE command table of `keeper`: each command's name and summary, and its module, loaded only when
// that command runs (the bundle splits at these imports). Add a command group with one line.
import type { CliEntry } from './framework.ts';

export const commands: CliEntry[] = [
  { name: 'status', summary: 'versions, units, database, ledger, storage, next scheduled backup', load: async () => (await import('./status.ts')).statusCommand },
  { name: 'jobs', summary: 'show jobs (backups, restores, updates …) and their progress', load: async () => (await import('./jobs.ts')).jobsGroup },
  { name: 'backup', summary: 'create, list, show, delete backups of the phpBorg installation', load: async () => (await import('./backup.ts')).backupGroup },
  { name: 'offsite', summary: 'off-site copies: list, push, pull, test a target', load: async () => (await import('./offsite.ts')).offsiteGroup },
  { name: 'restore', summary: 'restore the whole installation from a backup (preview, safety backup, automatic rollback)', load: async () => (await import('./restore.ts')).restoreCommand },
  { name: 'drill', summary: 'prove a backup restorable without touching the live install (scratch dir + scratch database)', load: async () => (await import('./drill.ts')).drillCommand },
  { name: 'update', summary: 'update phpBorg from git (status, check, changelog, apply, history, rollback)', load: async () => (await import('./update.ts')).updateGroup },
  { name: 'settings', summary: 'backup settings: storage, encryption, retention, schedule, email', load: async () => (await import('./settings.ts')).settingsGroup },
  { name: 'audit', summary: 'the audit log: who did what, when, with which outcome', load: async () => (await import('./audit.ts')).auditCommand },
  { name: 'emergency-kit', summary: 'print the emergency kit: passphrase, fingerprint, where backups are, manual restore recipe', load: async () => (await import('./kit.ts')).kitCommand },
  // test-only, hidden unless KEEPER_TEST_TASKS=1
  ...(process.env.KEEPER_TEST_TASKS === '1' ? [{ name: 'test', summary: '(tests only) run a test task', load: async () => (await import('./test-task.ts')).testGroup }] : []),
];
