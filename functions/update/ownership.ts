// The elevated helper runs git, npm and composer as root; files it creates in phpBorg's tree must
// still belong to phpBorg's user. Only files owned by root are handed back (chown --from).
import type { KeeperConfig } from '../../runtime/config.ts';
import { runOk } from '../../runtime/exec.ts';

export async function giveBackToOwner(config: KeeperConfig): Promise<void> {
  if (!config.owner || process.getuid?.() !== 0) return;
  const { user, group } = config.owner;
  await runOk('chown', ['-R', '-h', '--from=0:0', `${user}:${group}`, '--', config.paths.code], { timeoutMs: 600_000 });
}
