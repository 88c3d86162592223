// runtime/instance-lock.ts: one runner per install. A live owner keeps others out (named by pid and
// port); a dead one, or a pid reused by another program since, does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireInstanceLock, InstanceLockedError, LOCK_FILE, lockOwner } from '../runtime/instance-lock.ts';

const startOf = (pid: number) => {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ')[19]!;
};

test('a live owner keeps others out; a dead or reused pid does not; release removes only our lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keeper-lock-'));
  const other = spawn('sleep', ['30']);
  try {
    const file = join(dir, LOCK_FILE);
    writeFileSync(file, JSON.stringify({ pid: other.pid, port: 8787, start: startOf(other.pid!) }));
    assert.throws(() => acquireInstanceLock(dir, 9000), (e: unknown) => e instanceof InstanceLockedError && e.message === `another keeper (pid ${other.pid}, port 8787) is running on this install`);
    assert.equal(lockOwner(dir)?.pid, other.pid);
    // the same pid, started at another time: another program now, the lock is stale
    writeFileSync(file, JSON.stringify({ pid: other.pid, port: 8787, start: '1' }));
    assert.equal(lockOwner(dir), null);
    const lock = acquireInstanceLock(dir, null);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
    lock.setPort(4321);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).port, 4321);
    lock.release();
    assert.ok(!existsSync(file));
    // a pid that is gone
    writeFileSync(file, JSON.stringify({ pid: spawnSync('true').pid, port: 1, start: null }));
    acquireInstanceLock(dir).release();
    // release never removes a lock another process took meanwhile
    const mine = acquireInstanceLock(dir);
    writeFileSync(file, JSON.stringify({ pid: other.pid, port: 2, start: startOf(other.pid!) }));
    mine.release();
    assert.ok(existsSync(file));
  } finally {
    other.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
