// One runner per install. Two runners on one ledger would each arm the schedule, each recover the
// other's live jobs and — for the demo — each stop the shared sandbox on exit. Node has no flock, so
// the lock is a file created with O_EXCL (`wx`) in the ledger's directory holding the owner's pid,
// its start time (so a pid reused by another program after a crash does not count) and its port.
// A lock whose owner is gone is taken over under a second O_EXCL file, so two newcomers finding the
// same stale lock cannot both win. The CLI never takes it: it works beside a running runner.
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'keeper.lock';

export interface LockOwner {
  pid: number;
  port: number | null;
  /** the process's start time from /proc (clock ticks since boot), null where /proc is absent */
  start: string | null;
}

export class InstanceLockedError extends Error {
  readonly code = 'already_running';
  constructor(readonly owner: LockOwner) {
    super(`another keeper (pid ${owner.pid}, port ${owner.port ?? 'not listening yet'}) is running on this install`);
    this.name = 'InstanceLockedError';
  }
}

export interface InstanceLock {
  readonly path: string;
  /** records the port once listening (port 0 picks one at listen time) */
  setPort(port: number): void;
  /** removes the lock if it is still this process's */
  release(): void;
}

function processStart(pid: number): string | null {
  try {
    // field 22 of /proc/PID/stat, counted after the command name's closing parenthesis
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // the pid exists: it is the owner only if it started when the owner did
  const now = processStart(owner.pid);
  return owner.start === null || now === null || now === owner.start;
}

function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' ? { pid: o.pid, port: typeof o.port === 'number' ? o.port : null, start: typeof o.start === 'string' ? o.start : null } : null;
  } catch {
    return null;
  }
}

function tryCreate(path: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeFileSync(fd, JSON.stringify(owner));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Who holds the install's lock now, if anyone alive does. */
export function lockOwner(stateDir: string): LockOwner | null {
  const o = readOwner(join(stateDir, LOCK_FILE));
  return o && alive(o) ? o : null;
}

/** Takes the install's lock or throws InstanceLockedError naming the runner that holds it. */
export function acquireInstanceLock(stateDir: string, port: number | null = null): InstanceLock {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return acquireLockFile(join(stateDir, LOCK_FILE), port);
}

/** Takes the lock file at `path` (its dir must exist) or throws InstanceLockedError naming its live owner. */
export function acquireLockFile(path: string, port: number | null = null): InstanceLock {
  const me: LockOwner = { pid: process.pid, port, start: processStart(process.pid) };
  for (let attempt = 0; attempt < 20; attempt++) {
    if (tryCreate(path, me)) return handle(path, me);
    const owner = readOwner(path);
    if (owner && owner.pid !== process.pid && alive(owner)) throw new InstanceLockedError(owner);
    // stale (owner gone) or unreadable (its owner died between create and write): take it over
    // while holding the takeover file, so only one newcomer removes it
    const takeover = `${path}.takeover`;
    if (!tryCreate(takeover, me)) {
      const t = readOwner(takeover);
      // a takeover file left by a process killed mid-takeover, or one so old its owner must be gone
      const old = Date.now() - safeMtime(takeover) > 10_000;
      if (!t || !alive(t) || old) safeUnlink(takeover);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // another newcomer is taking over: let it finish
      continue;
    }
    try {
      const again = readOwner(path);
      if (!again || again.pid === owner?.pid || !alive(again)) safeUnlink(path);
    } finally {
      safeUnlink(takeover);
    }
  }
  const owner = readOwner(path);
  if (owner) throw new InstanceLockedError(owner);
  throw new Error(`cannot take the lock ${path}`);
}

function handle(path: string, me: LockOwner): InstanceLock {
  return {
    path,
    setPort(port) {
      me.port = port;
      writeFileSync(path, JSON.stringify(me), { mode: 0o600 });
    },
    release() {
      if (readOwner(path)?.pid === me.pid) safeUnlink(path);
    },
  };
}

function safeUnlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* already gone */
  }
}

function safeMtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}
