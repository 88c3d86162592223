// The dependency step of an update: composer and the frontend build run only where the diff touches
// them, with their output in the job log. Also the system dependency check (config.system_dependencies).
import { chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { removeTree } from '../../runtime/remove-tree.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { hasCommand, run, safeEnv } from '../../runtime/exec.ts';
import { fileAtCommit } from '../../runtime/git.ts';
import type { TaskContext } from '../../runtime/task.ts';
import { resolveOwner, type Ownership } from '../restore/files.ts';

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

/**
 * A throw-away HOME for the owner's composer / npm: root's HOME (kept by safeEnv) is not writable by
 * the owner, and the owner's own home (e.g. /var/www) is often root's too. Owned by `who`, mode 0700,
 * removed by dispose(). Only paths go in `env`, never a secret.
 */
export interface OwnerHome {
  dir: string;
  env: { HOME: string; COMPOSER_HOME: string; npm_config_cache: string; USER: string; LOGNAME: string };
  dispose(): Promise<void>;
}

export async function ownerHome(who: Ownership, user: string): Promise<OwnerHome> {
  const dir = await mkdtemp(join(tmpdir(), 'keeper-home-'));
  try {
    const composer = join(dir, '.composer');
    const npmCache = join(dir, '.npm');
    for (const d of [composer, npmCache]) await mkdir(d, { mode: 0o700 });
    for (const d of [dir, composer, npmCache]) await chown(d, who.uid, who.gid);
    return {
      dir,
      env: { HOME: dir, COMPOSER_HOME: composer, npm_config_cache: npmCache, USER: user, LOGNAME: user },
      dispose: () => removeTree(dir),
    };
  } catch (e) {
    await removeTree(dir);
    throw e;
  }
}

/** How commands run: as the code's owner (with its temp HOME) when we are root and an owner is configured. */
interface Runner {
  wrap(cmd: string, args: string[]): [string, string[]];
  env: Record<string, string>;
}

const AS_SELF: Runner = { wrap: (cmd, args) => [cmd, args], env: {} };

/**
 * The lines of a failed command's output that say why: composer's "Problem N" blocks and the
 * failed/missing rows of check-platform-reqs, npm's ERR!/error lines; else the last five lines.
 */
export function decisiveLines(lines: string[], max = 40): string[] {
  const out: string[] = [];
  let inProblem = false;
  for (const raw of lines) {
    const line = raw.replace(/\s+$/, '');
    if (!line.trim()) {
      inProblem = false;
      continue;
    }
    if (/^\s*Problem \d+\b/.test(line)) {
      inProblem = true;
      out.push(line.trim());
    } else if (inProblem && /^\s+(-|\S)/.test(line)) out.push(line.trim());
    else {
      inProblem = false;
      if (/^npm (ERR!|error)\s*\S/.test(line) || /\s(failed|missing)$/.test(line) || /^Your (requirements|lock file) /.test(line.trim())) out.push(line.trim());
    }
  }
  const picked = out.length ? out : lines.filter((l) => l.trim()).slice(-5);
  return picked.length > max ? [...picked.slice(0, max - 1), `… ${picked.length - max + 1} more line(s) in the job log`] : picked;
}

async function step(ctx: TaskContext, runner: Runner, cwd: string, cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<void> {
  const [c, a] = runner.wrap(cmd, args);
  ctx.log('info', `$ ${[cmd, ...args].join(' ')}  (in ${cwd})`);
  // bounded: the decisive lines are picked from it when the command fails
  const seen: string[] = [];
  const r = await run(c, a, {
    cwd,
    env: safeEnv({ ...extraEnv, ...runner.env }),
    signal: ctx.signal,
    timeoutMs: 1_800_000,
    onLine: (line) => {
      if (!line.trim()) return;
      ctx.log('info', line);
      seen.push(line);
      if (seen.length > 5000) seen.shift();
    },
  });
  if (r.code !== 0) {
    const why = decisiveLines(seen);
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code ?? r.signal})${why.length ? ': ' + why.join(' | ') : ''}`);
  }
}

export interface PlatformCheck {
  ok: boolean;
  /** what was checked, or why nothing could be */
  detail: string;
  /** the decisive lines of composer's answer when not ok */
  problems: string[];
}

/**
 * composer check-platform-reqs against the TARGET commit's composer.json + composer.lock, copied from
 * git into a scratch dir: the PHP version and extensions the new code needs, checked before anything
 * is changed. --no-plugins: nothing of the target's code runs here. A target without composer.lock
 * cannot be checked this way (composer install finds out later), which the detail says.
 */
export async function checkPlatformRequirements(codeDir: string, target: string, signal?: AbortSignal): Promise<PlatformCheck> {
  const [json, lock] = await Promise.all([fileAtCommit(codeDir, target, 'composer.json'), fileAtCommit(codeDir, target, 'composer.lock')]);
  if (json === null) return { ok: true, detail: `the target commit has no composer.json`, problems: [] };
  if (lock === null) return { ok: true, detail: 'the target commit has no composer.lock: platform requirements are checked by composer install', problems: [] };
  const dir = await mkdtemp(join(tmpdir(), 'keeper-platform-'));
  try {
    await writeFile(join(dir, 'composer.json'), json, { mode: 0o600 });
    await writeFile(join(dir, 'composer.lock'), lock, { mode: 0o600 });
    const args = ['check-platform-reqs', '--lock', '--no-dev', '--no-plugins', '--no-interaction', `--working-dir=${dir}`];
    const r = await run('composer', args, {
      cwd: dir,
      // a scratch HOME: nothing of root's composer config or cache is read or written
      env: safeEnv({ HOME: dir, COMPOSER_HOME: join(dir, '.composer'), COMPOSER_NO_INTERACTION: '1', COMPOSER_ALLOW_SUPERUSER: '1' }),
      signal,
      timeoutMs: 120_000,
    });
    if (r.code === 0) return { ok: true, detail: `composer ${args.slice(0, 4).join(' ')}: requirements met`, problems: [] };
    const lines = `${r.stdout}\n${r.stderr}`.split('\n');
    return { ok: false, detail: `composer check-platform-reqs exited ${r.code ?? r.signal}`, problems: decisiveLines(lines) };
  } finally {
    await removeTree(dir);
  }
}

/** composer install and/or npm ci + npm run build, as planned. Throws on the first failure. */
export async function runDependencies(
  ctx: TaskContext,
  codeDir: string,
  plan: DependencyPlan,
  progress: (message: string) => void,
): Promise<string[]> {
  if (!plan.composer && !plan.frontend) return [];
  const owner = ctx.config.owner && process.getuid?.() === 0 ? ctx.config.owner : null;
  const who = owner && (await resolveOwner(owner));
  if (!owner || !who) return installDependencies(ctx, AS_SELF, codeDir, plan, progress);
  const home = await ownerHome(who, owner.user);
  // -m: runuser would otherwise reset HOME to the owner's passwd home; USER/LOGNAME come from home.env
  const runner: Runner = { wrap: (cmd, args) => ['runuser', ['-m', '-u', owner.user, '--', cmd, ...args]], env: home.env };
  try {
    return await installDependencies(ctx, runner, codeDir, plan, progress);
  } finally {
    await home.dispose();
  }
}

async function installDependencies(
  ctx: TaskContext,
  runner: Runner,
  codeDir: string,
  plan: DependencyPlan,
  progress: (message: string) => void,
): Promise<string[]> {
  const done: string[] = [];
  if (plan.composer) {
    progress('composer install');
    await step(ctx, runner, codeDir, 'composer', ['install', '--no-dev', '--optimize-autoloader', '--no-interaction'], {
      COMPOSER_NO_INTERACTION: '1',
    });
    done.push('composer');
  }
  if (plan.frontend) {
    const dir = join(codeDir, 'frontend');
    const npmEnv = { npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    progress('npm ci');
    await step(ctx, runner, dir, 'npm', ['ci'], npmEnv);
    progress('npm run build');
    await step(ctx, runner, dir, 'npm', ['run', 'build'], npmEnv);
    done.push('frontend');
  }
  return done;
}

/** The install's system dependency manifest: every listed command present. */
export async function missingSystemDependencies(config: KeeperConfig): Promise<string[]> {
  return missingCommands(config.system_dependencies);
}
