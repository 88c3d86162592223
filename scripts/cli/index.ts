// THE command table of `keeper`. Add a command group with one import and one line.
import type { CliModule } from './framework.ts';
import { statusCommand } from './status.ts';
import { jobsGroup } from './jobs.ts';
import { backupGroup } from './backup.ts';
import { settingsGroup } from './settings.ts';
import { restoreCommand } from './restore.ts';
import { drillCommand } from './drill.ts';
import { testGroup } from './test-task.ts';
import { auditCommand } from './audit.ts';
import { kitCommand } from './kit.ts';
import { updateGroup } from './update.ts';
import { offsiteGroup } from './offsite.ts';

export const commands: CliModule[] = [
  statusCommand,
  jobsGroup,
  backupGroup,
  offsiteGroup,
  restoreCommand,
  drillCommand,
  updateGroup,
  settingsGroup,
  auditCommand,
  kitCommand,
  // test-only, hidden unless KEEPER_TEST_TASKS=1
  ...(process.env.KEEPER_TEST_TASKS === '1' ? [testGroup] : []),
];
