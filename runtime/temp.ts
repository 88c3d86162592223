// Keeper's own temporaries: <paths.state>/tmp (0700), one <pid>-<label>-<random> dir (0700) per use.
// Secrets (a MariaDB defaults file, a throw-away ledger) never land in the shared /tmp, and what a
// process killed before its cleanup leaves behind is found by the next start: the pid in the name
// says whether its owner is gone (sweepTemp).
import { lstat, mkdir, mkdtemp, readdir, chmod } from 'node:fs/promises';
import { removeTree } from './remove-tree.ts';
import { join } from 'node:path';
import { pidAlive } from '../state/jobs.ts';

const NAME = /^(\d+)-/;
let processStateDir: string | null = null;

/** `<stateDir>/tmp`, where every keeper temporary lives. */
export function tempRoot(stateDir: string): string {
  return join(stateDir, 'tmp');
}

/**
 * The state dir of this process's configuration, for code that is handed a phpBorg .env and not the
 * configuration (runtime/mariadb*.ts). Set once by each entry point right after loading its config.
 */
export function setTempStateDir(stateDir: string): void {
  processStateDir = stateDir;
}

/** The state dir set by setTempStateDir; throws when unset rather than fall back to the shared /tmp. */
export function tempStateDir(): string {
  if (processStateDir === null) {
    throw new Error("keeper's temp dir is not set: the entry point must call setTempStateDir(config.paths.state)");
  }
  return processStateDir;
}

/** Creates `<stateDir>/tmp` (0700) when missing and refuses anything but a real directory there. */
async function ensureRoot(stateDir: string): Promise<string> {
  const root = tempRoot(stateDir);
  await mkdir(root, { recursive: true, mode: 0o700 });
  const st = await lstat(root);
  if (!st.isDirectory()) throw new Error(`${root} is not a directory`);
  // another user's root (the elevated helper's) is left as it is: only its owner may change it
  if (st.uid === process.getuid?.() && (st.mode & 0o777) !== 0o700) await chmod(root, 0o700);
  return root;
}

/** A fresh 0700 dir `<stateDir>/tmp/<pid>-<label>-XXXXXX`; the caller removes it. */
export async function keeperTempDir(label: string, stateDir: string = tempStateDir()): Promise<string> {
  const root = await ensureRoot(stateDir);
  return mkdtemp(join(root, `${process.pid}-${label.replace(/[^A-Za-z0-9_]/g, '_')}-`));
}

/** Runs fn with a fresh keeper temp dir, removed whatever happens. */
export async function withKeeperTemp<T>(label: string, fn: (dir: string) => Promise<T>, stateDir?: string): Promise<T> {
  const dir = await keeperTempDir(label, stateDir);
  try {
    return await fn(dir);
  } finally {
    await removeTree(dir);
  }
}

/**
 * Removes the temp dirs of processes that are gone; returns their paths. Dirs of live processes and
 * names keeper did not make are left alone; one that cannot be removed is retried at the next start.
 */
export async function sweepTemp(stateDir: string, isAlive: (pid: number) => boolean = pidAlive): Promise<string[]> {
  const root = tempRoot(stateDir);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') return [];
    throw e;
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? 0);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    const path = join(root, name);
    try {
      await removeTree(path);
      removed.push(path);
    } catch {
      /* retried at the next start */
    }
  }
  return removed;
}
