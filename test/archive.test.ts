// Archive format v1: round trips through stock tools (sha256sum, openssl, tar), our own reader,
// tampering, hostile archives, early stop of readHead. Real files and real tools; no mocks.
import { verifyFailure } from '../functions/backup/verify.task.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync,
  symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { runOk } from '../runtime/exec.ts';
import {
  archiveBaseName, archiveFileName, parseArchiveFileName, codeExclude, writeArchive, writeSidecars, removePartials,
  plannedSize, readHead, verifyArchive, extractArchive, checkIntegrity, isEncrypted, readSidecar, passphraseFingerprint,
  isArchiveError, ArchiveError, GENERATOR, FORMAT_VERSION, type ArchiveMetadata, type Manifest, type Source, type WriteResult,
} from '../archive/index.ts';
import { errorMessage } from '../runtime/error-message.ts';

const PASS = 'correct horse battery staple ünïcode';
const DATE = new Date(Date.UTC(2025, 0, 24, 14, 30, 22));
const ROOT = archiveBaseName(DATE);

let base: string;
let src: { code: string; ssh: string; etc: string; systemd: string; sudoers: string; env: string; db: string };
let passFile: string;

function makeFixture(dir: string) {
  const code = join(dir, 'code');
  const w = (p: string, data: string | Buffer, mode = 0o644) => {
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    chmodSync(p, mode);
  };
  w(join(code, 'index.php'), '<?php echo "hi";\n');
  w(join(code, 'bin/console'), '#!/usr/bin/env php\n<?php\n', 0o755);
  w(join(code, 'src/Service/Backup.php'), '<?php class Backup {}\n'.repeat(200));
  w(join(code, 'vendor/symfony/cache/Adapter.php'), '<?php // vendor cache package must be kept\n');
  w(join(code, '.git/HEAD'), 'ref: refs/heads/master\n');
  w(join(code, '.env'), 'APP_SECRET=s3cr3t\nDB_PASSWORD=pw\n', 0o600);
  w(join(code, 'public/big.bin'), randomBytes(3 * 1024 * 1024 + 123));
  w(join(code, 'empty.txt'), '');
  const deep = join(code, 'frontend/dist/' + 'very-long-directory-name-'.repeat(5), 'assets', 'é-unicode-' + 'x'.repeat(90) + '.js');
  w(deep, 'console.log(1)\n');
  mkdirSync(join(code, 'migrations'), { recursive: true });
  chmodSync(join(code, 'migrations'), 0o750);
  mkdirSync(join(code, 'empty-dir'));
  symlinkSync('src/Service', join(code, 'service-link'));
  symlinkSync('../index.php', join(code, 'bin/index-link'));
  // excluded
  w(join(code, 'node_modules/pkg/index.js'), 'module.exports = 1\n');
  w(join(code, 'frontend/node_modules/x/y.js'), 'x\n');
  w(join(code, 'var/cache/prod/c.php'), 'cache\n');
  const ssh = join(dir, 'ssh');
  w(join(ssh, 'id_ed25519'), 'PRIVATE KEY\n', 0o600);
  w(join(ssh, 'id_ed25519.pub'), 'ssh-ed25519 AAAA phpborg\n', 0o644);
  w(join(ssh, 'authorized_keys'), 'ssh-ed25519 BBBB\n', 0o600);
  w(join(ssh, 'keys/server1/id_rsa'), 'RSA\n', 0o600);
  chmodSync(ssh, 0o700);
  const etc = join(dir, 'etc-phpborg');
  w(join(etc, 'ca/ca.crt'), 'CERT\n');
  const systemd = join(dir, 'systemd');
  w(join(systemd, 'phpborg-scheduler.service'), '[Service]\nExecStart=/bin/true\n');
  w(join(systemd, 'phpborg-worker@.service'), '[Service]\n');
  const sudoers = join(dir, 'sudoers');
  w(join(sudoers, 'phpborg-workers'), 'phpborg ALL=(root) NOPASSWD: /usr/bin/borg\n', 0o440);
  const env = join(code, '.env');
  const db = join(dir, 'database.sql');
  w(db, '-- dump\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n'.repeat(1000));
  return { code, ssh, etc, systemd, sudoers, env, db };
}

function metadata(over: Partial<ArchiveMetadata> = {}): ArchiveMetadata {
  return {
    generator: GENERATOR,
    format_version: FORMAT_VERSION,
    backup_date: DATE.toISOString(),
    phpborg_version: 'v1.2.3',
    git_commit: 'abc1234def5678',
    php_version: '8.3.1',
    mysql_version: null,
    node_version: '20.10.0',
    borg_version: null,
    encrypted: false,
    encryption_algo: null,
    compression: 'gzip',
    total_size_bytes: 0,
    files_count: 0,
    database_size_bytes: statSync(src.db).size,
    database_sha256: createHash('sha256').update(readFileSync(src.db)).digest('hex'),
    table_row_counts: { t: 1000 },
    created_by_user_id: 1,
    created_by: 'admin',
    backup_type: 'manual',
    notes: null,
    maintenance_window_ms: 1234,
    ...over,
  };
}

const settings = Buffer.from(JSON.stringify([
  { key: 'smtp_host', value: 'mail', category: 'email', type: 'string', description: null, updated_at: null, secret: false },
  { key: 'smtp_password', value: 'hmac-sha256:' + 'a'.repeat(64), category: 'email', type: 'password', description: null, updated_at: null, secret: true },
]));

function sources(meta: ArchiveMetadata): Source[] {
  return [
    { kind: 'buffer', path: 'metadata.json', data: Buffer.from(JSON.stringify(meta)) },
    { kind: 'buffer', path: 'settings.json', data: settings },
    { kind: 'file', path: 'config/env.backup', from: src.env },
    { kind: 'file', path: 'config/sudoers/phpborg-workers', from: join(src.sudoers, 'phpborg-workers') },
    { kind: 'file', path: 'config/systemd/phpborg-scheduler.service', from: join(src.systemd, 'phpborg-scheduler.service') },
    { kind: 'file', path: 'config/systemd/phpborg-worker@.service', from: join(src.systemd, 'phpborg-worker@.service') },
    { kind: 'dir', path: 'config/etc-phpborg', from: src.etc },
    { kind: 'dir', path: 'ssh', from: src.ssh },
    { kind: 'file', path: 'database.sql', from: src.db },
    { kind: 'dir', path: 'code', from: src.code, exclude: codeExclude },
  ];
}

async function makeArchive(name: string, passphrase: string | null): Promise<{ dir: string; r: WriteResult }> {
  const dir = join(base, 'store-' + name);
  mkdirSync(dir, { mode: 0o700 });
  const meta = metadata({ encrypted: passphrase !== null, encryption_algo: passphrase ? 'AES-256-CBC' : null });
  const planned = await plannedSize(sources(meta));
  meta.files_count = planned.files_count;
  meta.total_size_bytes = planned.total_size_bytes;
  const r = await writeArchive({ dir, fileName: archiveFileName(DATE, 'manual'), root: ROOT, sources: sources(meta), passphrase });
  await writeSidecars(r.file, { metadata: meta, sha256: r.sha256, size_bytes: r.size_bytes, mac: r.mac, key_check: r.key_check });
  return { dir, r };
}

/** Every entry under dir: type, mode, contents hash or link target. */
function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) (out.set(rel, `dir ${mode}`), walk(p));
      else out.set(rel, `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

const excluded = (rel: string) => /(^|\/)node_modules$/.test(rel) || rel === 'var/cache';

function codeSnapshotEqual(extractedCode: string) {
  const want = snapshot(src.code, excluded);
  // var/ only held the excluded cache: the writer keeps var/ itself (empty)
  const got = snapshot(extractedCode);
  got.delete('var');
  want.delete('var');
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, v] of want) assert.equal(got.get(k), v, `code/${k}`);
}

async function expectCode(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArchiveError(e), `expected ArchiveError, got ${String(e)}`);
    assert.equal((e as ArchiveError).code, code, errorMessage(e));
    return true;
  });
}

before(() => {
  base = mkdtempSync(join(tmpdir(), 'keeper-archive-'));
  src = makeFixture(join(base, 'src'));
  passFile = join(base, 'pass');
  writeFileSync(passFile, PASS, { mode: 0o600 });
});
after(() => rmSync(base, { recursive: true, force: true }));

describe('names', () => {
  test('archive names are UTC and parse back', () => {
    assert.equal(ROOT, 'phpborg-backup-2025-01-24-143022');
    assert.equal(archiveFileName(DATE, 'pre_update'), 'phpborg-backup-2025-01-24-143022-pre_update.tar.gz');
    const p = parseArchiveFileName('phpborg-backup-2025-01-24-143022-pre_emergency_restore.tar.gz');
    assert.equal(p?.type, 'pre_emergency_restore');
    assert.equal(p?.date.toISOString(), DATE.toISOString());
    assert.equal(parseArchiveFileName('other.tar.gz'), null);
  });
  test('passphrase fingerprint is short, stable and distinct', async () => {
    const a = await passphraseFingerprint(PASS);
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(await passphraseFingerprint(PASS), a);
    assert.notEqual(await passphraseFingerprint(PASS + 'x'), a);
  });
});

describe('plain archive', () => {
  let dir: string;
  let r: WriteResult;
  before(async () => ({ dir, r } = await makeArchive('plain', null)));

  test('sidecars check with sha256sum -c; files are 0600; no temporary file left', async () => {
    const out = await runOk('sha256sum', ['-c', archiveFileName(DATE, 'manual') + '.sha256'], { cwd: dir });
    assert.match(out, /: OK/);
    for (const n of readdirSync(dir)) assert.equal(statSync(join(dir, n)).mode & 0o777, 0o600, n);
    assert.deepEqual(readdirSync(dir).sort(), [archiveFileName(DATE, 'manual'), archiveFileName(DATE, 'manual') + '.json', archiveFileName(DATE, 'manual') + '.sha256']);
    const side = await readSidecar(r.file);
    assert.equal(side?.sha256, r.sha256);
    assert.equal(side?.mac, null);
    assert.equal(await isEncrypted(r.file), false);
  });

  test('tar -xzf restores the tree byte for byte; metadata.json first, manifest.json last', async () => {
    const list = (await runOk('tar', ['-tzf', r.file])).trim().split('\n');
    assert.equal(list[0], `${ROOT}/metadata.json`);
    assert.equal(list[1], `${ROOT}/settings.json`);
    assert.equal(list.at(-1), `${ROOT}/manifest.json`);
    assert.ok(list.indexOf(`${ROOT}/database.sql`) < list.indexOf(`${ROOT}/code/`));
    assert.ok(!list.some((l) => l.includes('node_modules') || l.includes('var/cache')));
    assert.ok(list.includes(`${ROOT}/code/vendor/symfony/cache/Adapter.php`));
    const x = join(base, 'x-plain');
    mkdirSync(x);
    await runOk('tar', ['-xzf', r.file, '-C', x]);
    codeSnapshotEqual(join(x, ROOT, 'code'));
    assert.deepEqual(readFileSync(join(x, ROOT, 'database.sql')), readFileSync(src.db));
    assert.equal(statSync(join(x, ROOT, 'ssh')).mode & 0o777, 0o700);
    assert.equal(statSync(join(x, ROOT, 'ssh/id_ed25519')).mode & 0o777, 0o600);
    assert.equal(statSync(join(x, ROOT, 'config/sudoers/phpborg-workers')).mode & 0o777, 0o440);
    await runOk('gzip', ['-t', r.file]);
    const manifest = JSON.parse(readFileSync(join(x, ROOT, 'manifest.json'), 'utf8')) as Manifest;
    assert.equal(r.files_count, manifest.entries.filter((e) => e.type === 'file').length);
  });

  test('verifyArchive passes every check; readHead gives the head only', async () => {
    const v = await verifyArchive(r.file);
    assert.equal(v.ok, true, JSON.stringify(v.checks));
    assert.deepEqual(v.checks.map((c) => c.name).sort(), ['gzip', 'hmac', 'layout', 'manifest', 'metadata', 'sha256', 'size', 'tar']);
    const h = await readHead(r.file);
    assert.equal(h.metadata.backup_type, 'manual');
    assert.equal(h.settings.length, 2);
    assert.deepEqual([...h.config.keys()].sort(), [
      'config/env.backup', 'config/etc-phpborg/ca/ca.crt', 'config/sudoers/phpborg-workers',
      'config/systemd/phpborg-scheduler.service', 'config/systemd/phpborg-worker@.service',
    ]);
    assert.equal(h.config.get('config/env.backup')?.toString(), readFileSync(src.env, 'utf8'));
    assert.deepEqual([...h.ssh.keys()].sort(), ['ssh/authorized_keys', 'ssh/id_ed25519', 'ssh/id_ed25519.pub', 'ssh/keys/server1/id_rsa']);
    assert.equal(h.ssh.get('ssh/id_ed25519')?.mode, 0o600);
  });

  test('extractArchive restores the tree with modes, links and times', async () => {
    const x = join(base, 'x-plain-own');
    mkdirSync(x);
    const res = await extractArchive(r.file, x);
    assert.equal(res.root, ROOT);
    codeSnapshotEqual(join(x, 'code'));
    assert.equal(readlinkSync(join(x, 'code/service-link')), 'src/Service');
    assert.equal(Math.floor(statSync(join(x, 'code/index.php')).mtimeMs / 1000), Math.floor(statSync(join(src.code, 'index.php')).mtimeMs / 1000));
    assert.ok(existsSync(join(x, 'manifest.json')));
  });
});

describe('encrypted archive', () => {
  let dir: string;
  let r: WriteResult;
  before(async () => ({ dir, r } = await makeArchive('enc', PASS)));

  test('openssl enc -d (passphrase from a 0600 file) then tar -xzf restores the tree', async () => {
    assert.equal(await isEncrypted(r.file), true);
    assert.match(r.mac ?? '', /^[0-9a-f]{64}$/);
    assert.match(r.key_check ?? '', /^[0-9a-f]{64}$/);
    await runOk('sha256sum', ['-c', archiveFileName(DATE, 'manual') + '.sha256'], { cwd: dir });
    const plain = join(base, 'dec.tar.gz');
    await runOk('openssl', ['enc', '-d', '-aes-256-cbc', '-pbkdf2', '-iter', '100000', '-md', 'sha256', '-in', r.file, '-out', plain, '-pass', `file:${passFile}`]);
    await runOk('gzip', ['-t', plain]);
    const x = join(base, 'x-enc');
    mkdirSync(x);
    await runOk('tar', ['-xzf', plain, '-C', x]);
    codeSnapshotEqual(join(x, ROOT, 'code'));
    const list = (await runOk('tar', ['-tzf', plain])).trim().split('\n');
    assert.equal(list[0], `${ROOT}/metadata.json`);
    assert.equal(list.at(-1), `${ROOT}/manifest.json`);
  });

  test('verify, head and extraction with the passphrase', async () => {
    const v = await verifyArchive(r.file, { passphrase: PASS });
    assert.equal(v.ok, true, JSON.stringify(v.checks));
    assert.equal(v.checks.find((c) => c.name === 'hmac')?.note, undefined);
    const h = await readHead(r.file, { passphrase: PASS });
    assert.equal(h.encrypted, true);
    const x = join(base, 'x-enc-own');
    mkdirSync(x);
    await extractArchive(r.file, x, { passphrase: PASS });
    codeSnapshotEqual(join(x, 'code'));
  });

  test('no passphrase → passphrase_required; wrong one → wrong_passphrase (with and without sidecar)', async () => {
    await expectCode(readHead(r.file), 'passphrase_required');
    const v0 = await verifyArchive(r.file);
    assert.equal(v0.ok, false);
    assert.equal(v0.code, 'passphrase_required');
    await expectCode(readHead(r.file, { passphrase: 'nope' }), 'wrong_passphrase');
    assert.equal((await checkIntegrity(r.file, { passphrase: 'nope', expected: { key_check: r.key_check } })).verdict, 'wrong_passphrase');
    assert.equal((await checkIntegrity(r.file, { passphrase: 'nope', expected: { sha256: r.sha256, mac: r.mac } })).verdict, 'wrong_passphrase');
    assert.equal((await checkIntegrity(r.file, { passphrase: 'nope', expected: {} })).verdict, 'wrong_passphrase');
    const v = await verifyArchive(r.file, { passphrase: 'nope' });
    assert.equal(v.code, 'wrong_passphrase');
    // one decisive failure; what could not run says why, never "the size is wrong"
    assert.deepEqual(v.checks.filter((c) => !c.ok && !c.not_checked).map((c) => c.name), ['hmac']);
    for (const c of v.checks.filter((c) => c.not_checked)) assert.equal(c.error, 'not checked (needs the right passphrase)', c.name);
    const line = verifyFailure(v.checks);
    assert.equal(line.match(/not checked/g)?.length, 1, line);
    assert.match(line, /^hmac: .*wrong passphrase.*; (\w+, )*\w+ not checked \(needs the right passphrase\)$/i);
    const x = join(base, 'x-wrong');
    mkdirSync(x);
    await expectCode(extractArchive(r.file, x, { passphrase: 'nope' }), 'wrong_passphrase');
    await expectCode(extractArchive(r.file, x, { passphrase: 'nope', expected: {} }), 'wrong_passphrase');
    assert.deepEqual(readdirSync(x), []);
  });

  test('one flipped byte → corrupt, nothing extracted', async () => {
    const bad = join(base, 'flipped.tar.gz');
    const data = readFileSync(r.file);
    data[Math.floor(data.length / 2)] ^= 0x01;
    writeFileSync(bad, data);
    const exp = { sha256: r.sha256, size_bytes: r.size_bytes, mac: r.mac, key_check: r.key_check };
    assert.equal((await checkIntegrity(bad, { passphrase: PASS, expected: exp })).verdict, 'corrupt');
    const v = await verifyArchive(bad, { passphrase: PASS, expected: exp });
    assert.equal(v.ok, false);
    assert.equal(v.code, 'corrupt');
    assert.equal(v.checks.find((c) => c.name === 'sha256')?.ok, false);
    const x = join(base, 'x-flip');
    mkdirSync(x);
    await expectCode(extractArchive(bad, x, { passphrase: PASS, expected: exp }), 'corrupt');
    assert.deepEqual(readdirSync(x), []);
    // with no recorded hash at all, the MAC alone cannot be compared, but the contents still fail a check
    const v2 = await verifyArchive(bad, { passphrase: PASS, expected: {} });
    assert.equal(v2.ok, false);
  });

  test('truncated file → truncated', async () => {
    const cut = join(base, 'cut.tar.gz');
    writeFileSync(cut, readFileSync(r.file).subarray(0, Math.floor(r.size_bytes * 0.7) & ~15));
    const exp = { sha256: r.sha256, size_bytes: r.size_bytes, mac: r.mac, key_check: r.key_check };
    assert.equal((await checkIntegrity(cut, { passphrase: PASS, expected: exp })).verdict, 'truncated');
    const x = join(base, 'x-cut');
    mkdirSync(x);
    await expectCode(extractArchive(cut, x, { passphrase: PASS, expected: exp }), 'truncated');
    const v = await verifyArchive(cut, { passphrase: PASS, expected: {} });
    assert.equal(v.ok, false);
    assert.equal(v.code, 'truncated', JSON.stringify(v.checks));
  });
});

describe('readHead stops early', () => {
  test('head of an archive whose end is missing still reads, fast', async () => {
    // a big incompressible dump: the head is in the first gzip member, then database.sql fills the rest
    const dir = join(base, 'store-big');
    mkdirSync(dir);
    const bigDb = join(base, 'big.sql');
    writeFileSync(bigDb, randomBytes(48 << 20));
    const meta = metadata({ encrypted: true, encryption_algo: 'AES-256-CBC', database_sha256: createHash('sha256').update(readFileSync(bigDb)).digest('hex') });
    const srcs = sources(meta).map((s) => (s.path === 'database.sql' ? { ...s, from: bigDb } : s));
    const r = await writeArchive({ dir, fileName: 'x.tar.gz', root: ROOT, sources: srcs, passphrase: PASS });
    // cut the file in the middle of database.sql: a reader that went that far would fail
    truncateSync(r.file, Math.floor(r.size_bytes / 2) & ~15);
    const t0 = performance.now();
    const h = await readHead(r.file, { passphrase: PASS });
    const ms = performance.now() - t0;
    assert.equal(h.metadata.database_sha256, meta.database_sha256);
    assert.equal(h.ssh.size, 4);
    assert.ok(ms < 3000, `readHead took ${ms} ms`);
    await expectCode(extractArchive(r.file, mkdtempSync(join(base, 'x-big-')), { passphrase: PASS, expected: {} }), 'truncated');
  });
});

// ---- hostile archives, crafted header by header ---------------------------------------------------------

type Craft = { path: string; type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'FIFO'; body?: Buffer | string; linkpath?: string; mode?: number };

function tarOf(entries: Craft[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const h = new Header({ path: e.path, type: e.type ?? 'File', mode: e.mode ?? 0o644, size: body.length, mtime: DATE, uid: 0, gid: 0, linkpath: e.linkpath ?? '', uname: '', gname: '', devmaj: 0, devmin: 0 });
    h.encode();
    parts.push(h.block!, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A well-formed small archive, with `hostile` spliced in before code/ and listed in the manifest. */
function crafted(name: string, opts: { hostile?: Craft[]; drop?: string; meta?: object; listed?: (entries: object[]) => object[] }): string {
  const db = 'CREATE TABLE t (id int);\n';
  const meta = { ...metadata({ database_sha256: createHash('sha256').update(db).digest('hex') }), ...opts.meta };
  const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
  let entries: Craft[] = [
    { path: `${ROOT}/metadata.json`, body: JSON.stringify(meta), mode: 0o600 },
    { path: `${ROOT}/settings.json`, body: '[]', mode: 0o600 },
    { path: `${ROOT}/database.sql`, body: db, mode: 0o600 },
    { path: `${ROOT}/code/`, type: 'Directory', mode: 0o755 },
    { path: `${ROOT}/code/a.php`, body: 'a', mode: 0o644 },
    ...(opts.hostile ?? []),
  ];
  if (opts.drop) entries = entries.filter((e) => e.path !== `${ROOT}/${opts.drop}`);
  const manifest = {
    generator: GENERATOR, format_version: 1, root: ROOT,
    entries: entries.filter((e) => !e.path.endsWith('/metadata.json') || true).map((e) => {
      const rel = e.path.startsWith(ROOT + '/') ? e.path.slice(ROOT.length + 1).replace(/\/$/, '') : e.path;
      const type = e.type === 'Directory' ? 'dir' : e.type === 'SymbolicLink' ? 'symlink' : 'file';
      const body = e.body === undefined ? '' : e.body;
      return { path: rel, type, size: type === 'file' ? Buffer.byteLength(body) : 0, mode: e.mode ?? 0o644, ...(e.linkpath ? { linkname: e.linkpath } : {}), ...(type === 'file' ? { sha256: sha(body) } : {}) };
    }),
  };
  if (opts.listed) manifest.entries = opts.listed(manifest.entries) as typeof manifest.entries;
  entries.push({ path: `${ROOT}/manifest.json`, body: JSON.stringify(manifest), mode: 0o600 });
  const file = join(base, 'hostile', `${name}.tar.gz`);
  mkdirSync(join(base, 'hostile'), { recursive: true });
  writeFileSync(file, gzipSync(tarOf(entries)));
  return file;
}

describe('hostile and broken archives are refused', () => {
  test('the crafting helper makes a valid archive (control)', async () => {
    const f = crafted('control', {});
    const v = await verifyArchive(f);
    assert.equal(v.ok, true, JSON.stringify(v.checks));
    const x = mkdtempSync(join(base, 'x-control-'));
    await extractArchive(f, x);
    assert.equal(readFileSync(join(x, 'code/a.php'), 'utf8'), 'a');
  });

  const cases: [string, Parameters<typeof crafted>[1], string][] = [
    ['dotdot', { hostile: [{ path: `${ROOT}/code/../../escaped.txt`, body: 'x' }] }, 'unsafe_entry'],
    ['dotdot-top', { hostile: [{ path: `../escaped.txt`, body: 'x' }] }, 'unsafe_entry'],
    ['absolute', { hostile: [{ path: `/tmp/keeper-escaped-abs.txt`, body: 'x' }] }, 'unsafe_entry'],
    ['symlink-escape', { hostile: [{ path: `${ROOT}/code/evil`, type: 'SymbolicLink', linkpath: '../../../../etc' }] }, 'unsafe_entry'],
    ['symlink-absolute', { hostile: [{ path: `${ROOT}/code/evil`, type: 'SymbolicLink', linkpath: '/etc/passwd' }] }, 'unsafe_entry'],
    ['symlink-then-write', { hostile: [{ path: `${ROOT}/code/sub`, type: 'SymbolicLink', linkpath: 'a.php' }, { path: `${ROOT}/code/sub/x`, body: 'x' }] }, 'unsafe_entry'],
    ['hardlink', { hostile: [{ path: `${ROOT}/code/hl`, type: 'Link', linkpath: '/etc/passwd' }] }, 'unsafe_entry'],
    ['hardlink-inside', { hostile: [{ path: `${ROOT}/code/hl`, type: 'Link', linkpath: `${ROOT}/code/a.php` }] }, 'unsafe_entry'],
    ['chardev', { hostile: [{ path: `${ROOT}/code/null`, type: 'CharacterDevice' }] }, 'unsafe_entry'],
    ['fifo', { hostile: [{ path: `${ROOT}/code/fifo`, type: 'FIFO' }] }, 'unsafe_entry'],
    ['outside-layout', { hostile: [{ path: `${ROOT}/etc/cron.d/x`, body: 'x' }] }, 'layout'],
    ['no-database', { drop: 'database.sql' }, 'missing_entry'],
    ['not-keeper', { meta: { generator: 'someone-else' } }, 'not_keeper'],
  ];
  for (const [name, spec, code] of cases) {
    test(`${name} → ${code}`, async () => {
      const f = crafted(name, spec);
      const v = await verifyArchive(f);
      assert.equal(v.ok, false, name);
      assert.equal(v.code, code, JSON.stringify(v.checks));
      const x = mkdtempSync(join(base, `x-${name}-`));
      const beforeSnap = readdirSync(base).sort();
      await expectCode(extractArchive(f, join(x)), code);
      assert.deepEqual(readdirSync(base).sort(), beforeSnap, 'nothing written beside the staging dir');
      assert.ok(!existsSync('/tmp/keeper-escaped-abs.txt'));
      assert.ok(!existsSync(join(x, '..', 'escaped.txt')));
    });
  }

  test('a file whose contents differ from the manifest → manifest_mismatch', async () => {
    const f = crafted('mismatch', {});
    // rewrite code/a.php's body 'a' → 'b' in the tar (same size; header checksum unaffected)
    const tar = (await import('node:zlib')).gunzipSync(readFileSync(f));
    const i = tar.indexOf(Buffer.from(`${ROOT}/code/a.php`));
    tar[i + 512] = 'b'.charCodeAt(0);
    writeFileSync(f, gzipSync(tar));
    const v = await verifyArchive(f);
    assert.equal(v.code, 'manifest_mismatch');
    assert.equal(v.checks.find((c) => c.name === 'manifest')?.ok, false);
    await expectCode(extractArchive(f, mkdtempSync(join(base, 'x-mm-'))), 'manifest_mismatch');
  });

  test('not an archive at all → refused', async () => {
    const f = join(base, 'hostile', 'junk.tar.gz');
    writeFileSync(f, randomBytes(10000));
    const v = await verifyArchive(f);
    assert.equal(v.ok, false);
    assert.equal(v.code, 'corrupt');
  });
});

describe('thousands of entries: the entry log spills to an unlinked scratch file', () => {
  // ~190 bytes of path and signature per entry (names under tar's 100 bytes: the crafter writes no PAX
  // header): 3,000 of them are well past what the log keeps in memory
  const many: Craft[] = Array.from({ length: 3000 }, (_, i) => ({
    path: `${ROOT}/code/d${i % 30}/${String(i).padStart(4, '0')}-${'n'.repeat(80)}.php`,
    body: randomBytes(2048).toString('base64'),
  }));
  const dirs: Craft[] = Array.from({ length: 30 }, (_, i) => ({ path: `${ROOT}/code/d${i}/`, type: 'Directory' as const, mode: 0o755 }));
  const tree = [...dirs, ...many];
  const nameOf = (i: number) => many[i].path.slice(ROOT.length + 1);

  test('a valid archive verifies and extracts; the scratch file has no name while it is used, and none after', async () => {
    const f = crafted('many', { hostile: tree });
    const spills = () => readdirSync(`/proc/self/fd`).map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } }).filter((l) => l.includes('.phpborg-backup-spill-'));
    const seen: string[] = [];
    const x = mkdtempSync(join(base, 'x-many-'));
    await extractArchive(f, x, { onProgress: () => seen.push(...spills()) });
    assert.ok(seen.length > 0, 'the log spilled while the archive was read');
    assert.ok(seen.every((l) => l.endsWith(' (deleted)')), seen.join(', '));
    assert.deepEqual(spills(), [], 'closed at the end');
    assert.ok(!readdirSync(join(x, '..')).some((n) => n.includes('spill')));
    assert.equal(readdirSync(join(x, 'code', 'd7')).length, 100);
    assert.equal(readFileSync(join(x, nameOf(2999)), 'utf8'), many[2999].body);
    const v = await verifyArchive(f);
    assert.equal(v.ok, true, JSON.stringify(v.checks));
  });

  test('the manifest in another order than the archive: the same check, by path', async () => {
    const v = await verifyArchive(crafted('many-reversed', { hostile: tree, listed: (e) => [...e].reverse() }));
    assert.equal(v.ok, true, JSON.stringify(v.checks));
  });

  const refused: [string, (e: object[]) => object[], RegExp][] = [
    ['an entry late in the log with another SHA-256', (e) => e.map((x) => ((x as { path: string }).path === nameOf(2900) ? { ...x, sha256: 'f'.repeat(64) } : x)), new RegExp(`${nameOf(2900)}: SHA-256 differs`)],
    ['an entry the manifest leaves out', (e) => e.filter((x) => (x as { path: string }).path !== nameOf(2000)), new RegExp(`${nameOf(2000)} is in the archive but not in manifest.json`)],
    ['an entry listed twice in place of another', (e) => e.map((x) => ((x as { path: string }).path === nameOf(1500) ? e.find((y) => (y as { path: string }).path === nameOf(10))! : x)), new RegExp(`${nameOf(1500)} is in the archive but not in manifest.json`)],
    ['an entry the archive lacks', (e) => [...e, { path: 'code/d1/ghost.php', type: 'file', size: 1, mode: 0o644, sha256: 'a'.repeat(64) }], /lists code\/d1\/ghost.php, which is missing from the archive/],
  ];
  for (const [what, listed, message] of refused) {
    test(`${what} → manifest_mismatch`, async () => {
      const f = crafted(`many-${what.replaceAll(' ', '-')}`, { hostile: tree, listed });
      const v = await verifyArchive(f);
      assert.equal(v.code, 'manifest_mismatch', JSON.stringify(v.checks));
      assert.match(v.checks.find((c) => c.name === 'manifest')!.error!, message);
    });
  }
});

describe('writer safety', () => {
  test('an escaping symlink in the code dir is refused at backup time and leaves nothing behind', async () => {
    const code = join(base, 'badcode');
    mkdirSync(code);
    symlinkSync('/etc/passwd', join(code, 'passwd'));
    const dir = join(base, 'store-bad');
    mkdirSync(dir);
    const srcs = sources(metadata()).map((s) => (s.path === 'code' ? { ...s, from: code } : s));
    await expectCode(plannedSize(srcs), 'unsafe_entry');
    await expectCode(writeArchive({ dir, fileName: 'x.tar.gz', root: ROOT, sources: srcs, passphrase: null }), 'unsafe_entry');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a cancelled write leaves no file; removePartials cleans a crash leftover', async () => {
    const dir = join(base, 'store-abort');
    mkdirSync(dir);
    const ac = new AbortController();
    const p = writeArchive({ dir, fileName: 'y.tar.gz', root: ROOT, sources: sources(metadata()), passphrase: PASS, signal: ac.signal, onProgress: () => ac.abort() });
    await expectCode(p, 'aborted');
    assert.deepEqual(readdirSync(dir), []);
    writeFileSync(join(dir, '.phpborg-backup-2025-01-01-000000-manual.tar.gz.partial'), 'x');
    writeFileSync(join(dir, 'keep.txt'), 'x');
    assert.deepEqual(await removePartials(dir), ['.phpborg-backup-2025-01-01-000000-manual.tar.gz.partial']);
    assert.deepEqual(readdirSync(dir), ['keep.txt']);
  });

  test('sources out of section order are refused', async () => {
    const dir = join(base, 'store-order');
    mkdirSync(dir);
    const s = sources(metadata());
    const swapped = [s[0], s[1], s[9], s[8]];
    await expectCode(writeArchive({ dir, fileName: 'z.tar.gz', root: ROOT, sources: swapped, passphrase: null }), 'layout');
  });
});


