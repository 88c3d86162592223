// The CLI as an administrator meets it: deleting asks first and says what the backup is for, times
// in local time with their offset, a mistyped archive or config field named plainly, usage and
// validation errors exit 2, the emergency restore finds its configuration like keeper does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { makeTempInstall, type TempInstall } from './support/runner.ts';
import { ledgerPath, openLedger } from '../state/ledger.ts';
import { getBackup, insertCompleted, completedBackup } from '../state/catalog.ts';
import { insertUpdate } from '../state/updates.ts';
import { spawnOut } from './support/install.ts';

const KEEPER = join(PROJECT_ROOT, 'scripts', 'keeper');

/** A command as an administrator runs it, with no KEEPER_CONFIG unless given. */
const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => spawnOut(cmd, args, { env: { ...process.env, KEEPER_CONFIG: '', ...env } });
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown> & { error?: { code: string; message: string } };

let t: TempInstall;
let older: number;
let rollbackPoint: number;
let newest: number;
const keeper = (args: string[], env: NodeJS.ProcessEnv = {}) => run(KEEPER, ['--config', t.configPath, ...args], env);

before(() => {
  t = makeTempInstall();
  const ledger = openLedger(ledgerPath(t.config.paths.state));
  const add = (name: string, type: string, at: string) =>
    insertCompleted(
      ledger,
      { filename: name, filepath: join(t.config.paths.storage, name), backup_type: type, encrypted: false, created_at: at, created_by: 1, created_by_name: 'admin' },
      completedBackup({ size_bytes: 10, sha256: 'a'.repeat(64), mac: null, sha256_path: null, json_path: null }, null),
    );
  older = add('phpborg-backup-2025-01-01-000100-manual.tar.gz', 'manual', '2025-01-01T00:01:00.000Z');
  rollbackPoint = add('phpborg-backup-2025-01-02-000100-pre_update.tar.gz', 'pre_update', '2025-01-02T00:01:00.000Z');
  newest = add('phpborg-backup-2025-01-03-000100-manual.tar.gz', 'manual', '2025-01-03T00:01:00.000Z');
  insertUpdate(ledger, {
    job_id: null, from_commit: 'a'.repeat(40), from_version: '2.0.0', to_commit: 'b'.repeat(40), to_version: '2.1.0', target: null,
    backup_id: rollbackPoint, actor_id: 1, actor_name: 'admin', started_at: '2025-01-02T00:02:00.000Z',
  });
  ledger.close();
});
after(() => t?.cleanup());

describe('keeper backup delete', () => {
  test('off a terminal it needs --yes and deletes nothing without it; it says what the backup is for', async () => {
    const r = await keeper(['backup', 'delete', String(rollbackPoint)]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /add --yes/);
    assert.match(r.stderr, /warning: it is the rollback point of update 1 \(to 2\.1\.0\)/);
    const ledger = openLedger(ledgerPath(t.config.paths.state));
    assert.ok(getBackup(ledger, rollbackPoint), 'still there');
    ledger.close();
    const n = await keeper(['backup', 'delete', String(newest)]);
    assert.match(n.stderr, /warning: it is the newest good backup/);
    const o = await keeper(['backup', 'delete', String(older), '--yes', '--json']);
    assert.equal(o.code, 0, o.stderr);
    assert.deepEqual(lastJson(o.stdout), { deleted: true, id: older, filename: 'phpborg-backup-2025-01-01-000100-manual.tar.gz', warnings: [] });
    assert.doesNotMatch(o.stderr, /warning/);
  });
});

describe('times', () => {
  test('human output is local time with its offset; --json keeps ISO', async () => {
    const r = await keeper(['backup', 'list'], { TZ: 'Europe/Paris' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2025-01-03 01:01:00 \+01:00/);
    const j = await keeper(['backup', 'show', String(newest), '--json'], { TZ: 'Europe/Paris' });
    assert.equal((lastJson(j.stdout) as { created_at: string }).created_at, '2025-01-03T00:01:00.000Z');
  });
});

describe('naming things', () => {
  test('a mistyped archive: "no such backup or file", exit 2; part of a name finds the backup', async () => {
    const r = await keeper(['restore', 'typo.tar.gz', '--yes']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), 'keeper: no such backup or file: typo.tar.gz; see keeper backup list');
    // the date alone names the backup: verify then looks for its file (absent here) by that name
    const v = await keeper(['backup', 'verify', '2025-01-03-000100', '--json']);
    const e = lastJson(v.stdout).error!;
    assert.notEqual(e.code, 'not_found');
    assert.match(e.message, /phpborg-backup-2025-01-03-000100-manual\.tar\.gz/);
    const many = await keeper(['backup', 'verify', '2025-01', '--json']);
    assert.equal(many.code, 2);
    assert.match(lastJson(many.stdout).error!.message, /matches [23] backups/);
  });

  test('an unknown config field: "unknown field …; did you mean …?", exit 2', async () => {
    const file = join(t.dir, 'typo.json');
    writeFileSync(file, JSON.stringify({ paths: { stroage: '/x' }, servre: {} }));
    const r = await run(KEEPER, ['--config', file, 'status']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown field paths\.stroage; did you mean storage\?/);
    assert.match(r.stderr, /unknown field servre; did you mean server\?/);
    assert.doesNotMatch(r.stderr, /Expected never/);
  });

  test('a wrong setting value is a validation error: exit 2', async () => {
    const r = await keeper(['settings', 'set', 'backup_retention_count', '99', '--json']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(lastJson(r.stdout).error!.code, 'invalid_setting');
  });

  test('parameters a task refuses are a usage error: exit 2', async () => {
    const r = await keeper(['test', 'run', 'test.sleep', '--params', '{"ms":"soon"}', '--json'], { KEEPER_TEST_TASKS: '1' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(lastJson(r.stdout).error!.code, 'invalid_params');
  });

  test('the emergency restore falls back to the demo configuration like keeper', async () => {
    const demo = join(PROJECT_ROOT, 'var', 'demo', 'keeper.json');
    const r = await run(join(PROJECT_ROOT, 'scripts', 'emergency-restore'), ['--yes', 'nothing-matches-this']);
    if (existsSync('/etc/phpborg-keeper/keeper.json')) return; // a real install here: it wins, as for keeper
    if (existsSync(demo)) assert.doesNotMatch(r.stdout + r.stderr, /No keeper configuration/);
    else assert.match(r.stdout + r.stderr, new RegExp(`No keeper configuration at /etc/phpborg-keeper/keeper\\.json or ${demo.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  });
});

describe('smaller things', () => {
  test('the recovery notice after a crashed job is one readable line', async () => {
    const { recoveryNotice } = await import('../scripts/cli/framework.ts');
    const line = recoveryNotice({
      id: 'j1',
      status: 'rolled_back',
      error: null,
      result: { message: 'interrupted at restore.database;\n rolled back to phpborg-backup-2025-01-02-000100-pre_restore.tar.gz', steps: [{ key: 'x' }] },
    } as never);
    assert.equal(line, 'recovered job j1 (an operation interrupted when its process died): rolled back — interrupted at restore.database; rolled back to phpborg-backup-2025-01-02-000100-pre_restore.tar.gz');
    assert.doesNotMatch(line, /[{}\n]/);
  });

  test('mail notifications start off while phpBorg cannot send mail, on when it can', async () => {
    const { seedSettings, getSettings } = await import('../state/settings.ts');
    const seed = (rows: { key: string; value: string }[]) => {
      const inst = makeTempInstall();
      const ledger = openLedger(ledgerPath(inst.config.paths.state));
      try {
        seedSettings(ledger, [{ key: 'backup_notify_email', value: 'admin@example.com' }, ...rows]);
        return getSettings(ledger, inst.config.paths.storage).backup_notify_email;
      } finally {
        ledger.close();
        inst.cleanup();
      }
    };
    assert.equal(seed([{ key: 'smtp.enabled', value: 'false' }, { key: 'smtp.host', value: 'mail.example.com' }]), false, 'SMTP off in phpBorg');
    assert.equal(seed([{ key: 'smtp.enabled', value: '1' }]), false, 'no SMTP host');
    assert.equal(seed([{ key: 'smtp.enabled', value: 'true' }, { key: 'smtp.host', value: 'mail.example.com' }]), true);
  });
});
