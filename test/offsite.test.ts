// Off-site copies against real parts: a private OpenSSH server (Debian's sshd on a loopback port, its
// own host key, one authorized key) as the sftp target, rclone with an sftp remote to the same server,
// and rclone's local backend. Then the faults (unreachable, wrong host key, remote disk full — a 64 KiB
// tmpfs mounted on the remote dir —, a copy cut half-way, a tampered remote archive) and the day the
// server dies: its storage and ledger wiped, only keeper.json, the key and the passphrase left,
// `keeper restore --fresh --from nas` brings back the install as it was backed up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { allUnits, maintenanceUnits } from '../runtime/install.ts';
import { run } from '../runtime/exec.ts';
import type { OffsiteTarget } from '../runtime/config.ts';
import { transportFor } from '../runtime/offsite.ts';
import { ledgerPath } from '../state/ledger.ts';
import { freePort } from '../scripts/sandbox-kit/meta.ts';
import { createRunner } from '../scripts/runner.ts';
import type { Runner } from '../runtime/runner.ts';
import { parseConfig } from '../runtime/config.ts';
import { renderMail } from '../functions/notify/templates.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { startSshd, type Sshd } from '../scripts/sandbox-kit/sshd.ts';
import { apiRequest, installSnapshot, jobOf, keeperCli, lastJson, passphraseFile, patchConfig, scriptPath, spawnOut, unitsActive } from './support/install.ts';

let sb: Sandbox;
let sshd: Sshd;
let work: string;
let passFile: string;
let fullMounted = false;
const PASSPHRASE = 'off-site passphrase';

const keeper = (...args: string[]) => keeperCli(sb, args);
const remoteDir = (t: string) => join(sshd.path, t);
const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

type Copy = { target: string; backup_id: number; status: string; error_code?: string; error?: string };
type BackupOut = { id: number; filename: string; offsite: { target: string; copies: Copy[]; retention: { deleted: string[] } }[]; warnings: string[] };

const sftp = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  kind: 'sftp',
  host: '127.0.0.1',
  port: sshd.port,
  user: sshd.user,
  path: remoteDir(name),
  key_file: sshd.key,
  known_hosts: sshd.knownHosts,
  ...extra,
});
let rcloneConf: string;
const targets = () => [
  sftp('nas', { keep: 2 }),
  { name: 'rs', kind: 'rclone', remote: `ss:${remoteDir('rs')}`, config_file: rcloneConf },
  { name: 'loc', kind: 'rclone', remote: `loc:${join(work, 'loc')}`, config_file: rcloneConf },
];

async function backup(): Promise<BackupOut> {
  const r = await keeper('backup', 'create', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return lastJson(r.stdout) as unknown as BackupOut;
}

const copyOf = (b: BackupOut, target: string) => b.offsite.find((t) => t.target === target)?.copies.find((c) => c.backup_id === b.id);

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'keeper-offsite-test-'));
  [sb, sshd] = await Promise.all([startSandbox(), startSshd(join(work, 'sshd'))]);
  rcloneConf = join(work, 'rclone.conf');
  writeFileSync(
    rcloneConf,
    `[loc]\ntype = local\n\n[ss]\ntype = sftp\nhost = 127.0.0.1\nport = ${sshd.port}\nuser = ${sshd.user}\nkey_file = ${sshd.key}\nknown_hosts_file = ${sshd.knownHosts}\n`,
    { mode: 0o600 },
  );
  patchConfig(sb, { health_timeout_s: 15, offsite: targets() });
  passFile = passphraseFile(join(work, 'pass'), PASSPHRASE);
  const r = await keeper('settings', 'set-passphrase', '--passphrase-file', passFile, '--enable', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
});
after(async () => {
  if (fullMounted) await run('umount', [remoteDir('full')]).catch(() => {});
  await sb?.down();
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('every backup is copied to sftp, rclone-over-sftp and rclone-local, verified; retention per target touches only our own archives; API shows it', async () => {
  // a keeper-named archive this install never copied there: retention must leave it alone
  mkdirSync(remoteDir('nas'), { recursive: true });
  const foreign = 'phpborg-backup-2020-01-01-000000-manual.tar.gz';
  writeFileSync(join(remoteDir('nas'), foreign), 'someone else');
  writeFileSync(join(remoteDir('nas'), `${foreign}.json`), '{}');

  const b1 = await backup();
  for (const t of ['nas', 'rs', 'loc']) assert.equal(copyOf(b1, t)?.status, 'verified', `${t}: ${JSON.stringify(b1.offsite)}`);
  for (const dir of [remoteDir('nas'), remoteDir('rs'), join(work, 'loc')]) {
    for (const f of [b1.filename, `${b1.filename}.sha256`, `${b1.filename}.json`]) assert.ok(files(dir).includes(f), `${dir} has ${f}`);
    assert.ok(!files(dir).some((f) => f.endsWith('.partial')), 'no temporary left');
    assert.deepEqual(readFileSync(join(dir, b1.filename)), readFileSync(join(sb.config.paths.storage, b1.filename)));
  }
  const b2 = await backup();
  const b3 = await backup();
  assert.equal(copyOf(b3, 'nas')?.status, 'verified');
  // nas keeps 2 per type: b1 went, the foreign file stayed; rs/loc keep as many as locally
  const nas = files(remoteDir('nas')).filter((f) => f.endsWith('.tar.gz'));
  assert.deepEqual(nas, [foreign, b2.filename, b3.filename].sort());
  assert.deepEqual(b3.offsite.find((t) => t.target === 'nas')!.retention.deleted, [b1.filename]);
  assert.equal(files(join(work, 'loc')).filter((f) => f.endsWith('.tar.gz')).length, 3);

  // keeper offsite list: from the sidecars, newest first
  let r = await keeper('offsite', 'list', 'nas', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const list = lastJson(r.stdout) as { items: { file: string; encrypted: boolean; type: string; complete: boolean; version: string | null }[]; skipped: string[] };
  assert.deepEqual(list.items.map((i) => i.file), [b3.filename, b2.filename]);
  assert.ok(list.items.every((i) => i.encrypted && i.complete && i.type === 'manual'));
  assert.equal(list.skipped.length, 1, 'the foreign sidecar is not a keeper sidecar');

  r = await keeper('offsite', 'test', 'rs', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((lastJson(r.stdout) as { ok: boolean }).ok, true);

  // the API: targets (no secret), per-backup state in the history, copy now, test connection
  const runner: Runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  try {
    const token = await sb.token();
    const api = (p: string, init: RequestInit = {}) => apiRequest(runner, token, p, init);
    let res = await api('/api/phpborg-backup/offsite');
    assert.equal(res.status, 200);
    const tv = (await res.json()) as { targets: { name: string; last_success: string | null; where: string }[] };
    assert.deepEqual(tv.targets.map((t) => t.name), ['nas', 'rs', 'loc']);
    assert.ok(tv.targets.every((t) => t.last_success), 'each target has a last success');
    assert.ok(!JSON.stringify(tv).includes(readFileSync(sshd.key, 'utf8').split('\n')[1]), 'never the key');
    res = await api('/api/phpborg-backup/settings');
    assert.deepEqual(((await res.json()) as { offsite_targets: { name: string }[] }).offsite_targets.map((t) => t.name), ['nas', 'rs', 'loc']);
    res = await api('/api/phpborg-backup/list');
    const items = ((await res.json()) as { items: { id: number; offsite: { target: string; status: string; removed_at: string | null }[] }[] }).items;
    const first = items.find((i) => i.id === b1.id)!;
    assert.deepEqual(first.offsite.map((o) => [o.target, o.status, !!o.removed_at]), [['loc', 'verified', false], ['nas', 'verified', true], ['rs', 'verified', false]]);
    const job = await jobOf(runner, await api(`/api/phpborg-backup/${b1.id}/offsite`, { method: 'POST', body: JSON.stringify({ target: 'nas' }) }), 60_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const t = await jobOf(runner, await api('/api/phpborg-backup/offsite/nas/test', { method: 'POST', body: '{}' }), 30_000);
    assert.equal(t.status, 'succeeded', JSON.stringify(t.error));
  } finally {
    await runner.close().catch(() => {});
  }
});

test('faults: unreachable, wrong host key and a full remote disk fail the copy, never the backup; push retries; a cut copy leaves no final file', async () => {
  const closed = await freePort();
  mkdirSync(remoteDir('full'), { recursive: true });
  const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', remoteDir('full')]);
  fullMounted = m.code === 0;
  mkdirSync(remoteDir('evil'), { recursive: true });
  patchConfig(sb, {
    offsite: [
      sftp('nas', { keep: 2 }),
      sftp('down', { port: closed }),
      sftp('evil', { known_hosts: sshd.wrongKnownHosts }),
      ...(fullMounted ? [sftp('full')] : []),
    ],
  });
  const b = await backup();
  assert.equal(copyOf(b, 'nas')?.status, 'verified');
  assert.equal(copyOf(b, 'down')?.error_code, 'unreachable', JSON.stringify(copyOf(b, 'down')));
  assert.equal(copyOf(b, 'evil')?.error_code, 'host_key_refused', JSON.stringify(copyOf(b, 'evil')));
  assert.deepEqual(files(remoteDir('evil')), [], 'nothing sent to a host whose key is not the pinned one');
  if (fullMounted) {
    assert.equal(copyOf(b, 'full')?.error_code, 'write_failed', JSON.stringify(copyOf(b, 'full')));
    assert.ok(!files(remoteDir('full')).includes(b.filename), 'no half archive under the final name');
  } else console.log('# mount -t tmpfs is not allowed here: remote disk full not exercised');
  assert.ok(b.warnings.some((w) => /off-site copy .* to down failed/.test(w)));

  // the ledger and the audit log say so; the next automatic attempt has a time
  const db = new Database(ledgerPath(sb.config.paths.state), { readonly: true });
  try {
    const row = db.prepare("SELECT status, attempts, next_attempt_at FROM offsite_copies WHERE backup_id = ? AND target = 'down'").get(b.id) as { status: string; attempts: number; next_attempt_at: string | null };
    assert.equal(row.status, 'failed');
    assert.equal(row.attempts, 1);
    assert.ok(row.next_attempt_at && row.next_attempt_at > new Date().toISOString());
    const audits = db.prepare("SELECT outcome, details_json FROM audit_log WHERE action = 'backup.offsite' AND target = ?").all(String(b.id)) as { outcome: string; details_json: string }[];
    assert.ok(audits.some((a) => a.outcome === 'failed' && a.details_json.includes('"down"')));
  } finally {
    db.close();
  }

  // the target is back: keeper offsite push copies it now
  patchConfig(sb, { offsite: [sftp('nas', { keep: 2 }), sftp('down')] });
  const r = await keeper('offsite', 'push', String(b.id), '--target', 'down', '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((lastJson(r.stdout) as { copies: Copy[] }).copies[0].status, 'verified');
  assert.ok(files(remoteDir('down')).includes(b.filename));

  // a copy cut half-way (bandwidth capped, then aborted): no file under the final name
  const slow = transportFor({ ...sftp('cut', { bwlimit_kbps: 400 }), keep: null, enabled: true } as unknown as OffsiteTarget);
  const ac = new AbortController();
  const cut = slow.put(join(sb.config.paths.storage, b.filename), b.filename, ac.signal);
  setTimeout(() => ac.abort(), 700);
  await assert.rejects(cut);
  assert.ok(!files(remoteDir('cut')).includes(b.filename), `cut copy: ${files(remoteDir('cut'))}`);
});

test('the server dies: from keeper.json, the key and the passphrase alone, restore --fresh --from nas brings back code, config, keys and every table; a tampered remote archive is refused', async () => {
  patchConfig(sb, { offsite: targets() });
  // what the backup holds: the workers stopped so nothing writes between the snapshot and the dump
  await sb.systemctl('stop', ...maintenanceUnits(sb.config, sb.env));
  const before0 = await installSnapshot(sb);
  await sb.systemctl('start', ...maintenanceUnits(sb.config, sb.env));
  const b = await backup();
  for (const t of ['nas', 'loc']) assert.equal(copyOf(b, t)?.status, 'verified');

  // the machine is gone: units, database and its user, code, keys, config, ledger, every local archive
  const env = sb.readEnv().env;
  const c = sb.config;
  await sb.systemctl('stop', ...allUnits(c, env));
  await sb.rootQuery(`DROP DATABASE IF EXISTS \`${env.DB_NAME}\`; DROP USER IF EXISTS '${env.DB_USER}'@'localhost', '${env.DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES`);
  for (const d of [c.paths.code, c.paths.ssh, c.paths.etc, c.paths.state, c.paths.storage]) rmSync(d, { recursive: true, force: true });
  for (const d of [c.paths.sudoers, c.paths.systemd]) for (const n of readdirSync(d)) if (n.startsWith(c.file_prefix)) rmSync(join(d, n), { recursive: true, force: true });

  // a tampered copy (one byte of the archive changed on the target) is refused, nothing kept
  const tampered = join(work, 'loc', b.filename);
  const bytes = readFileSync(tampered);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(tampered, bytes);
  let r = await keeper('offsite', 'pull', 'loc', b.filename, '--json');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal((lastJson(r.stdout) as { error: { code: string } }).error.code, 'offsite_tampered');
  assert.deepEqual(files(c.paths.storage).filter((f) => f.includes('.tar.gz') && !f.endsWith('.json') && !f.endsWith('.sha256')), [], 'nothing left in the storage dir');

  r = await keeper('restore', '--fresh', '--from', 'nas', '--passphrase-file', passFile, '--json');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const res = lastJson(r.stdout) as { outcome: string; pulled: { filename: string } };
  assert.equal(res.outcome, 'succeeded');
  assert.equal(res.pulled.filename, b.filename, 'the newest archive on the target');
  const now = await installSnapshot(sb);
  assert.deepEqual(now.tables, before0.tables, 'every table equals the backup');
  assert.deepEqual(now.code, before0.code);
  assert.deepEqual(now.ssh, before0.ssh);
  assert.deepEqual(now.sudoers, before0.sudoers);
  assert.deepEqual(now.systemd, before0.systemd);
  assert.deepEqual(now.etc, before0.etc);
  await unitsActive(sb);

  // scripts/emergency-restore --from: the archive pulled again (the local one removed), restored
  for (const f of files(c.paths.storage)) if (f.startsWith(b.filename)) rmSync(join(c.paths.storage, f));
  const e = await spawnOut(scriptPath('emergency-restore'), ['--config', sb.info.config, '--from', 'rs', b.filename, '--yes', '--passphrase-file', passFile, '--json']);
  assert.equal(e.code, 0, e.stdout + e.stderr);
  assert.match(e.stdout, /pulled: .*SHA-256 checked/);
  const ej = lastJson(e.stdout) as { ok: boolean; pulled: { filename: string; reused: boolean } };
  assert.equal(ej.ok, true);
  assert.deepEqual([ej.pulled.filename, ej.pulled.reused], [b.filename, false]);
  assert.ok(existsSync(join(c.paths.storage, b.filename)));
  assert.deepEqual((await installSnapshot(sb)).tables, before0.tables);
});

test('configuration: each kind validated, unsafe values refused with the field named; the mail says how each copy went', () => {
  const ok = parseConfig({ offsite: [{ name: 'nas', kind: 'sftp', host: 'backup.example.org', user: 'keeper', path: '/srv/k', key_file: '/k', known_hosts: '/kh' }, { name: 's3', kind: 'rclone', remote: 's3:my-bucket/phpborg', config_file: '/etc/phpborg-keeper/rclone.conf', keep: 10 }] });
  assert.equal(ok.offsite[0].kind === 'sftp' && ok.offsite[0].port, 22);
  assert.equal(ok.offsite[0].enabled, true);
  for (const bad of [
    { name: 'x', kind: 'sftp', host: '-oProxyCommand=sh', user: 'u', path: '/p', key_file: '/k', known_hosts: '/kh' },
    { name: 'x', kind: 'sftp', host: 'h', user: 'u', path: "/p'; rm -rf /", key_file: '/k', known_hosts: '/kh' },
    { name: 'x', kind: 'ftp' },
    { name: 'x', kind: 'rclone', remote: 'no-colon', config_file: '/c' },
  ]) assert.throws(() => parseConfig({ offsite: [bad] }), /offsite\.0/);
  assert.throws(() => parseConfig({ offsite: [{ name: 'a', kind: 'rclone', remote: 'r:', config_file: '/c' }, { name: 'a', kind: 'rclone', remote: 'r:', config_file: '/c' }] }), /each target name once/);

  const mail = (lang: 'en' | 'fr') =>
    renderMail(
      { kind: 'backup_created', backup: { file: 'phpborg-backup-2026-01-01-000000-manual.tar.gz' }, offsite: [{ target: 'nas', status: 'verified' }, { target: 's3', status: 'failed', error: 'rclone: connection refused' }] },
      { lang, timezone: 'UTC' },
    ).text;
  assert.match(mail('en'), /nas: copied and verified/);
  assert.match(mail('en'), /s3: FAILED \(rclone: connection refused\) — retried automatically later/);
  assert.match(mail('fr'), /s3: ÉCHEC/);
});
