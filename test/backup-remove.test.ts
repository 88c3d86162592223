// Removing a backup deletes only the archive's own files, whatever its catalog row says: the ledger
// is writable by the runner's user, and retention runs in the root helper.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ledgerPath, openLedger } from '../state/ledger.ts';
import { getBackup, insertBackup, markSucceeded } from '../state/catalog.ts';
import { isArchiveOwnFile, removeBackup } from '../functions/backup/remove.ts';

const dir = mkdtempSync(join(tmpdir(), 'keeper-remove-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const actor = { id: 1, name: 'admin' };
const NAME = 'phpborg-backup-2025-01-01-000100-manual.tar.gz';

test('isArchiveOwnFile: the archive and its two sidecars beside it, nothing else', () => {
  const a = `/srv/b/${NAME}`;
  for (const f of [a, `${a}.sha256`, `${a}.json`]) assert.equal(isArchiveOwnFile(a, f), true, f);
  for (const f of ['/etc/shadow', `/srv/other/${NAME}`, `/srv/b/${NAME}.bak`, '/srv/b/x.json']) assert.equal(isArchiveOwnFile(a, f), false, f);
  assert.equal(isArchiveOwnFile('/etc/shadow', '/etc/shadow'), false);
  assert.equal(isArchiveOwnFile(`relative/${NAME}`, `relative/${NAME}`), false);
  assert.equal(isArchiveOwnFile(`/srv/b/../../etc/${NAME}`, `/srv/b/../../etc/${NAME}`), false);
});

test('a catalog row pointing at another file is refused and nothing is deleted; a normal one goes', async () => {
  const ledger = openLedger(ledgerPath(join(dir, 'state')));
  try {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    const store = join(dir, 'store');
    mkdirSync(store);
    const add = (filepath: string, sidecar?: string) => {
      const id = insertBackup(ledger, { filename: NAME, filepath, backup_type: 'manual', encrypted: false, created_at: '2025-01-01T00:01:00.000Z', created_by: 1, created_by_name: 'admin' });
      markSucceeded(ledger, id, { size_bytes: 1, hash_sha256: '0'.repeat(64), mac: null, phpborg_version: null, git_commit: null, php_version: null, mysql_version: null, node_version: null, borg_version: null, files_count: 1, database_size_bytes: 1, maintenance_window_ms: 1, sha256_path: sidecar ?? `${filepath}.sha256`, json_path: `${filepath}.json` });
      return getBackup(ledger, id)!;
    };
    const evil = add(victim);
    await assert.rejects(removeBackup(ledger, evil, actor, 'retention'), (e: Error & { code?: string }) => e.code === 'unsafe_path' && /nothing was deleted/.test(e.message));
    assert.ok(getBackup(ledger, evil.id), 'the row is kept');
    ledger.prepare('DELETE FROM phpborg_backups').run();
    const evilSidecar = add(join(store, NAME), victim);
    await assert.rejects(removeBackup(ledger, evilSidecar, actor, 'delete'), /unsafe_path|not a keeper archive/);
    assert.ok(existsSync(victim), 'the other file is still there');
    assert.ok(getBackup(ledger, evilSidecar.id), 'the row is kept');

    ledger.prepare('DELETE FROM phpborg_backups').run();
    const file = join(store, NAME);
    for (const f of [file, `${file}.sha256`, `${file}.json`]) writeFileSync(f, 'x');
    const ok = add(file);
    await removeBackup(ledger, ok, actor, 'delete');
    for (const f of [file, `${file}.sha256`, `${file}.json`]) assert.ok(!existsSync(f), `${f} deleted`);
    assert.equal(getBackup(ledger, ok.id), null);
  } finally {
    ledger.close();
  }
});
