// The dependency step of an update: composer and the frontend build run only where the diff touches
// them, with their output in the job log. Also the system dependency check (config.system_dependencies).
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { hasCommand, run, safeEnv } from '../../runtime/exec.ts';
import type { TaskContext } from '../../runtime/task.ts';

export interface DependencyPlan {
  composer: boolean;
  frontend: boolean;
}

const FRONTEND_SKIP = ['frontend/dist/', 'frontend/node_modules/'];

/** What the changed paths between the two commits require. */
export function planDependencies(changed: string[]): DependencyPlan {
  return {
    composer: changed.some((p) => p === 'composer.json' || p === 'composer.lock'),
    frontend: changed.some((p) => p.startsWith('frontend/') && !FRONTEND_SKIP.some((s) => p.startsWith(s))),
  };
}

/**
 * Commands the update needs: git, the MariaDB client and dump (backup, migrations, and the import a
 * rollback would run), plus composer / npm where the diff calls for them.
 */
export function neededCommands(plan: DependencyPlan): string[] {
  const cmds = ['git', 'mariadb', 'mariadb-dump'];
  if (plan.composer) cmds.push('composer');
  if (plan.frontend) cmds.push('npm', 'node');
  return cmds;
}

export async function missingCommands(names: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const n of [...new Set(names)]) if (!(await hasCommand(n))) missing.push(n);
  return missing;
}

/** Runs a command as the code's owner when we are root and an owner is configured. */
function asOwner(config: KeeperConfig, cmd: string, args: string[]): [string, string[]] {
  if (config.owner && process.getuid?.() === 0) return ['runuser', ['-u', config.owner.user, '--', cmd, ...args]];
  return [cmd, args];
}

async function step(ctx: TaskContext, cwd: string, cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  const [c, a] = asOwner(ctx.config, cmd, args);
  ctx.log('info', `$ ${[cmd, ...args].join(' ')}  (in ${cwd})`);
  const tail: string[] = [];
  const r = await run(c, a, {
    cwd,
    env: safeEnv(extraEnv),
    signal: ctx.signal,
    timeoutMs: 1_800_000,
    onLine: (line) => {
      if (!line.trim()) return;
      ctx.log('info', line);
      tail.push(line);
      if (tail.length > 5) tail.shift();
    },
  });
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code ?? r.signal})${tail.length ? ': ' + tail.join(' | ') : ''}`);
  }
}

/** composer install and/or npm ci + npm run build, as planned. Throws on the first failure. */
export async function runDependencies(
  ctx: TaskContext,
  codeDir: string,
  plan: DependencyPlan,
  progress: (message: string) => void,
): Promise<string[]> {
  const done: string[] = [];
  if (plan.composer) {
    progress('composer install');
    await step(ctx, codeDir, 'composer', ['install', '--no-dev', '--optimize-autoloader', '--no-interaction'], {
      COMPOSER_NO_INTERACTION: '1',
    });
    done.push('composer');
  }
  if (plan.frontend) {
    const dir = join(codeDir, 'frontend');
    const npmEnv = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    progress('npm ci');
    await step(ctx, dir, 'npm', ['ci'], npmEnv);
    progress('npm run build');
    await step(ctx, dir, 'npm', ['run', 'build'], npmEnv);
    done.push('frontend');
  }
  return done;
}

/** The install's system dependency manifest: every listed command present. */
export async function missingSystemDependencies(config: KeeperConfig): Promise<string[]> {
  return missingCommands(config.system_dependencies);
}
