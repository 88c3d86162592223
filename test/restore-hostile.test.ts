// Hostile and broken archives, each refused at verify (and by a restore, at its verify step) with a
// clear error and nothing changed: `../` entry, absolute path, symlink and hardlink escaping, device
// file, truncated file, one flipped byte, wrong passphrase, metadata that is not keeper's, no
// database.sql. Upload: junk → 422 and nothing left; round trip download → delete → upload → restore.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { runOk } from '../runtime/exec.ts';
import { tableChecksums } from '../runtime/mariadb-import.ts';
import type { JobView } from '../state/jobs.ts';
import { getBackup } from '../state/catalog.ts';
import type { RestoreResult } from '../functions/restore/apply.ts';
import { verifyArchive } from '../archive/index.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { entriesOf, tarOf, type Entry } from './support/tar-forge.ts';
import { apiRequest, jobOf as jobOf_, unitsActive } from './support/install.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;
const PASSPHRASE = `right-${randomBytes(6).toString('hex')}`;

before(async () => {
  sb = await startSandbox();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-hostile-test-'));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const auth = () => ({ authorization: `Bearer ${token}` });
const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const jobOf = (res: Response, timeoutMs = 80_000) => jobOf_(runner, res, timeoutMs);
async function task(name: string, params: Record<string, unknown>): Promise<JobView> {
  const r = runner.jobs.start(name, params, { id: null, name: 'test' });
  assert.ok(r.ok);
  return runner.jobs.wait(r.jobId, 60_000);
}
async function backup(): Promise<{ id: number; file: string }> {
  const j = await jobOf(await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({}) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  return j.result as { id: number; file: string };
}

type Manifest = { entries: { path: string; type: string; size: number; mode: number; linkname?: string; sha256?: string }[] };
/** Rewrites manifest.json (last entry) with extra entries so only the hostile property is wrong. */
function withManifest(entries: Entry[], root: string, edit: (m: Manifest) => void): Entry[] {
  const last = entries[entries.length - 1];
  assert.equal(last.path, `${root}/manifest.json`);
  const m = JSON.parse(last.data!.toString('utf8')) as Manifest;
  edit(m);
  return [...entries.slice(0, -1), { ...last, data: Buffer.from(JSON.stringify(m, null, 2)) }];
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ─────────────────────────────────────────────────────────────────────────────────────────────────

test('hostile and broken archives are refused at verify, and by restore, with nothing changed', async () => {
  const good = await backup();
  const { root, entries } = await entriesOf(good.file);
  const evilName = `keeper-evil-${randomBytes(4).toString('hex')}`;
  const evil = Buffer.from('evil\n');
  const md = entries.find((e) => e.path === `${root}/metadata.json`)!;
  const variants: Record<string, Entry[] | Buffer> = {
    rebuilt_control: entries,
    dotdot: withManifest(
      [...entries.slice(0, 2), { path: `${root}/code/../../${evilName}`, type: 'file', mode: 0o644, data: evil }, ...entries.slice(2)],
      root,
      (m) => m.entries.push({ path: `code/../../${evilName}`, type: 'file', size: evil.length, mode: 0o644, sha256: sha(evil) }),
    ),
    absolute: [...entries.slice(0, 2), { path: join(work, evilName), type: 'file', mode: 0o644, data: evil }, ...entries.slice(2)],
    symlink_escape: withManifest(
      [...entries.slice(0, -1), { path: `${root}/code/evil-link`, type: 'symlink', mode: 0o777, link: '../../../../../../etc/passwd' }, entries.at(-1)!],
      root,
      (m) => m.entries.push({ path: 'code/evil-link', type: 'symlink', size: 0, mode: 0o777, linkname: '../../../../../../etc/passwd' }),
    ),
    hardlink_escape: [...entries.slice(0, -1), { path: `${root}/code/evil-hardlink`, type: 'hardlink', mode: 0o644, link: '/etc/passwd' }, entries.at(-1)!],
    device: [...entries.slice(0, -1), { path: `${root}/code/evil-dev`, type: 'chardev', mode: 0o666 }, entries.at(-1)!],
    not_keeper: [
      { ...md, data: Buffer.from(JSON.stringify({ ...JSON.parse(md.data!.toString('utf8')), generator: 'someone-else' })) },
      ...entries.slice(1),
    ],
    no_database: withManifest(
      entries.filter((e) => e.path !== `${root}/database.sql`),
      root,
      (m) => (m.entries = m.entries.filter((e) => e.path !== 'database.sql')),
    ),
  };
  const real = readFileSync(good.file);
  variants.truncated = real.subarray(0, Math.floor(real.length / 2));
  const flipped = Buffer.from(real);
  flipped[Math.floor(flipped.length / 2)] ^= 0x01;
  variants.flipped_byte = flipped;

  const before = {
    code: (await runOk('find', [sb.config.paths.code, '-printf', '%P %s %m\\n'])).split('\n').sort().join('\n'),
    tables: await tableChecksums(sb.readEnv().env),
  };
  const files: Record<string, string> = {};
  for (const [name, v] of Object.entries(variants)) {
    const f = join(work, `${name}.tar.gz`);
    writeFileSync(f, Buffer.isBuffer(v) ? v : tarOf(v), { mode: 0o600 });
    files[name] = f;
  }

  const control = await task('backup.verify', { file: files.rebuilt_control });
  assert.equal(control.status, 'succeeded', `the test's tar writer makes valid archives: ${JSON.stringify(control.error)}`);

  // the reason each one is refused for (the archive core's codes)
  const want: Record<string, RegExp> = {
    dotdot: /^unsafe_entry$/,
    absolute: /^unsafe_entry$/,
    symlink_escape: /^unsafe_entry$/,
    hardlink_escape: /^(unsafe_entry|layout)$/,
    device: /^(unsafe_entry|layout)$/,
    not_keeper: /^not_keeper$/,
    no_database: /^missing_entry$/,
    truncated: /^(truncated|corrupt)$/,
    flipped_byte: /^corrupt$/,
  };
  // every kind, through the archive core's verify (in-process: each job is a helper start)
  for (const name of Object.keys(want)) {
    const v = await verifyArchive(files[name]);
    assert.equal(v.ok, false, `${name}: verify refuses it`);
    assert.match(v.code ?? '', want[name], `${name}: ${v.code}: ${JSON.stringify(v.checks.filter((c) => !c.ok))}`);
  }
  // and through the backup.verify task (job, helper), a few kinds at once
  const picked = ['symlink_escape', 'device', 'not_keeper', 'flipped_byte'];
  const verified = await Promise.all(picked.map(async (name) => [name, await task('backup.verify', { file: files[name] })] as const));
  for (const [name, v] of verified) {
    assert.equal(v.status, 'failed', `${name}: verify refuses it`);
    assert.match(v.error?.code ?? '', want[name], `${name}: ${v.error?.code}: ${v.error?.message}`);
    assert.ok(v.error!.message.length > 20, `${name}: a clear error (${v.error?.message})`);
  }
  // a restore of any of them stops at its verify step
  for (const name of ['dotdot', 'hardlink_escape', 'no_database']) {
    const r = await task('backup.restore', { file: files[name] });
    assert.equal(r.status, 'failed', `${name}: restore refuses it`);
    assert.equal(r.error?.step, 'restore.verify', `${name}: at verify (${r.error?.message})`);
    assert.match(r.error!.message, /nothing was changed/);
  }
  for (const p of [join(work, evilName), join(sb.config.paths.code, '..', evilName), join(sb.dir, evilName)]) assert.ok(!existsSync(p), `${p} never written`);
  assert.deepEqual(
    { code: (await runOk('find', [sb.config.paths.code, '-printf', '%P %s %m\\n'])).split('\n').sort().join('\n'), tables: await tableChecksums(sb.readEnv().env) },
    before,
    'the install is unchanged',
  );
  assert.deepEqual(readdirSync(join(sb.config.paths.code, '..')).filter((n) => n.includes('keeper')), [], 'no staging left');
  await unitsActive(sb);
});

test('wrong passphrase: refused at verify as wrong_passphrase, and the right one passes', async () => {
  let res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_encryption_passphrase: PASSPHRASE, backup_encryption_enabled: true }) });
  assert.equal(res.status, 200, await res.clone().text());
  const enc = await backup();
  res = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_encryption_enabled: false }) });
  assert.equal(res.status, 200);
  const wrong = await jobOf(await api(`/api/phpborg-backup/${enc.id}/verify`, { method: 'POST', body: JSON.stringify({ passphrase: 'not-the-passphrase' }) }));
  assert.equal(wrong.status, 'failed');
  assert.equal(wrong.error?.code, 'wrong_passphrase', wrong.error?.message);
  const pv = await api(`/api/phpborg-backup/${enc.id}/restore-preview`, { method: 'POST', body: JSON.stringify({ passphrase: 'not-the-passphrase' }) });
  assert.equal(pv.status, 422);
  const right = await jobOf(await api(`/api/phpborg-backup/${enc.id}/verify`, { method: 'POST', body: JSON.stringify({}) }));
  assert.equal(right.status, 'succeeded', JSON.stringify(right.error));
  const checks = (right.result as { checks: { name: string; ok: boolean }[] }).checks;
  assert.ok(checks.length >= 5 && checks.every((c) => c.ok));
  assert.ok(!JSON.stringify(runner.ledger.prepare('SELECT params_json FROM jobs').all()).includes('not-the-passphrase'), 'the passphrase is not stored');
});

const storageFiles = () => readdirSync(sb.config.paths.storage).sort();

async function upload(body: Buffer, filename: string, passphrase?: string): Promise<Response> {
  const form = new FormData();
  if (passphrase) form.append('passphrase', passphrase);
  form.append('file', new Blob([new Uint8Array(body)]), filename);
  return runner.request('/api/phpborg-backup/upload', { method: 'POST', headers: auth(), body: form });
}

test('upload: junk and hostile archives → 422, nothing left; round trip download → delete → upload → restore', async () => {
  const before = storageFiles();
  let res = await upload(Buffer.from('this is not an archive at all'), 'junk.tar.gz');
  assert.equal(res.status, 422, await res.clone().text());
  res = await upload(readFileSync(join(work, 'dotdot.tar.gz')), 'dotdot.tar.gz');
  assert.equal(res.status, 422, await res.clone().text());
  assert.deepEqual(storageFiles(), before, 'nothing left behind');
  // over the size limit: 413, streamed (the limit cuts it off), nothing left
  const small = await createRunner({ ...sb.config, upload_max_bytes: 4096 }, sb.info.config, { services: false, log: () => {} });
  try {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(64 * 1024)]), 'big.tar.gz');
    const big = await small.request('/api/phpborg-backup/upload', { method: 'POST', headers: auth(), body: form });
    assert.equal(big.status, 413, await big.clone().text());
  } finally {
    await small.close();
  }
  assert.deepEqual(storageFiles(), before, 'nothing left behind after a 413');

  const b = await backup();
  const row = getBackup(runner.ledger, b.id)!;
  const dl = await runner.request(`/api/phpborg-backup/${b.id}/download`, { headers: auth() });
  assert.equal(dl.status, 200);
  const bytes = Buffer.from(await dl.arrayBuffer());
  assert.equal(sha(bytes), row.hash_sha256);
  res = await api(`/api/phpborg-backup/${b.id}`, { method: 'DELETE' });
  assert.equal(res.status, 200, await res.clone().text());
  assert.ok(!existsSync(b.file));

  res = await upload(bytes, 'whatever-name.tar.gz');
  assert.equal(res.status, 201, await res.clone().text());
  const { backup: up } = (await res.json()) as { backup: { id: number; filename: string; origin: string; hash_sha256: string } };
  assert.equal(up.origin, 'uploaded');
  assert.equal(up.filename, row.filename);
  assert.equal(up.hash_sha256, row.hash_sha256);
  assert.ok(existsSync(`${b.file}.sha256`) && existsSync(`${b.file}.json`));
  res = await upload(bytes, 'again.tar.gz');
  assert.equal(res.status, 409, 'the same archive twice');

  const tablesBefore = await tableChecksums(sb.readEnv().env);
  await sb.query("INSERT INTO servers (name, host) VALUES ('lost', 'lost.example.lan')");
  const j = await jobOf(await api(`/api/phpborg-backup/${up.id}/restore`, { method: 'POST', body: JSON.stringify({ confirm: true }) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error ?? j.result));
  assert.equal((j.result as RestoreResult).outcome, 'succeeded');
  assert.deepEqual(await tableChecksums(sb.readEnv().env), tablesBefore);
  mkdirSync(work, { recursive: true });
});

test('verify compares both sidecars with the catalog: an edited .json or .sha256 fails it as sidecar_mismatch', async () => {
  const list = (await (await api('/api/phpborg-backup/list')).json()) as { items: { id: number; status: string; filepath: string }[] };
  const b = list.items.find((x) => x.status === 'succeeded')!;
  const verify = async () => jobOf(await api(`/api/phpborg-backup/${b.id}/verify`, { method: 'POST', body: '{}' }));
  const ok = await verify();
  assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
  for (const [ext, edit] of [
    ['json', (t: string) => t.replace(/"sha256": "([0-9a-f])/, (_m, c: string) => `"sha256": "${c === '0' ? '1' : '0'}`)],
    ['sha256', (t: string) => `${'0'.repeat(64)}${t.slice(64)}`],
  ] as const) {
    const f = `${b.filepath}.${ext}`;
    const original = readFileSync(f, 'utf8');
    const edited = edit(original);
    assert.notEqual(edited, original, `the test edits ${ext}`);
    writeFileSync(f, edited);
    try {
      const bad = await verify();
      assert.equal(bad.status, 'failed', `.${ext} edited`);
      assert.equal(bad.error?.code, 'sidecar_mismatch');
      assert.match(bad.error!.message, new RegExp(`\\.${ext} (has|says) .*the catalog.*upload it again`));
    } finally {
      writeFileSync(f, original);
    }
  }
});
