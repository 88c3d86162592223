// Versions of the protected install and its tools, as recorded in every archive's metadata
// (docs/archive-format.md). Never throws: a missing tool or a non-git code dir gives null.
import { run } from './exec.ts';

export interface Versions {
  phpborg_version: string | null;
  git_commit: string | null;
  php_version: string | null;
  mysql_version: string | null;
  node_version: string | null;
  borg_version: string | null;
}

async function firstLine(cmd: string, args: string[], cwd?: string): Promise<string | null> {
  try {
    const r = await run(cmd, args, { cwd, timeoutMs: 10_000 });
    if (r.code !== 0) return null;
    const line = r.stdout.trim().split('\n')[0]?.trim();
    return line ? line : null;
  } catch {
    return null;
  }
}

/** `git describe --tags --always` of the code dir. */
export function phpborgVersion(codeDir: string): Promise<string | null> {
  return git(codeDir, ['describe', '--tags', '--always']);
}

export function gitCommit(codeDir: string): Promise<string | null> {
  return git(codeDir, ['rev-parse', 'HEAD']);
}

/** git in the code dir; safe.directory because the helper may run as root on a phpborg-owned tree. */
function git(codeDir: string, args: string[]): Promise<string | null> {
  return firstLine('git', ['-c', `safe.directory=${codeDir}`, '-C', codeDir, ...args], undefined);
}

/** "8.3.1" from `php -r 'echo PHP_VERSION;'`. */
export function phpVersion(): Promise<string | null> {
  return firstLine('php', ['-r', 'echo PHP_VERSION;']);
}

/** "20.10.0" from `node --version` (the system's node, which builds phpBorg's frontend). */
export async function nodeVersion(): Promise<string | null> {
  const v = await firstLine('node', ['--version']);
  return v ? v.replace(/^v/, '') : null;
}

/** "1.2.7" from `borg --version` ("borg 1.2.7"). */
export async function borgVersion(): Promise<string | null> {
  const v = await firstLine('borg', ['--version']);
  return v ? v.replace(/^borg(-\S+)?\s+/, '') : null;
}

/** All of them; mysqlVersion is passed in because it needs the database (runtime/mariadb.ts). */
export async function collectVersions(
  codeDir: string,
  mysqlVersion: () => Promise<string | null>,
): Promise<Versions> {
  const safe = async (f: () => Promise<string | null>) => {
    try {
      return await f();
    } catch {
      return null;
    }
  };
  const [phpborg_version, git_commit, php_version, mysql_version, node_version, borg_version] = await Promise.all([
    phpborgVersion(codeDir),
    gitCommit(codeDir),
    phpVersion(),
    safe(mysqlVersion),
    nodeVersion(),
    borgVersion(),
  ]);
  return { phpborg_version, git_commit, php_version, mysql_version, node_version, borg_version };
}
