// The web UI in a real browser (playwright-core driving Debian's chromium) against the runner on a
// sandbox: sign in, back up with live progress, download, restore preview and restore, updates
// (check, changelog, apply, history), FR/EN, and the "administrators only" page for a non-admin.
// Each step saves light and dark screenshots under var/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { startServer, type Runner, type Serving } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { ensureUiBuilt } from '../functions/ui/build.ts';
import { deleteBackupRow, insertBackup } from '../state/catalog.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', 'var', 'screenshots');
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let sb: Sandbox;
let runner: Runner;
let serving: Serving;
let ctx: BrowserContext;
let page: Page;
let profile: string;
let adminToken: string;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await runner.request(path, { ...init, headers: { Authorization: `Bearer ${adminToken}`, ...(init.headers ?? {}) } });
  assert.ok(res.ok, `${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as T;
}

/**
 * Light and dark screenshots of the page as it is now. The theme is switched the way the header
 * toggle does it (class on <html>), so a modal that covers the header can be shot too; the toggle
 * itself is clicked in the sign-in test.
 */
async function shots(name: string, opts: { full?: boolean } = {}): Promise<void> {
  const setDark = (on: boolean) => page.evaluate((v) => document.documentElement.classList.toggle('dark', v), on);
  const was = await page.evaluate(() => document.documentElement.classList.contains('dark'));
  if (opts.full ?? true) await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header stays on top
  for (const dark of [false, true]) {
    await setDark(dark);
    await page.waitForTimeout(250); // let the buttons' colour transitions finish
    await page.screenshot({ path: join(SHOTS, `${name}-${dark ? 'dark' : 'light'}.png`), fullPage: opts.full ?? true });
  }
  await setDark(was);
}

describe('web UI in chromium', { timeout: 420_000 }, () => {
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
    const [s] = await Promise.all([startSandbox(), ensureUiBuilt({ log: () => {} })]);
    sb = s;
    adminToken = await sb.token();
    runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
    serving = await startServer(runner, { port: 0 });
    // a fresh profile (user-data-dir) per run: no token or theme left from before
    profile = mkdtempSync(join(tmpdir(), 'keeper-ui-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
      locale: 'fr-FR',
      // not the install's zone (the sandbox's phpBorg says Europe/Paris): times must say whose they are
      timezoneId: 'America/New_York',
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => console.error(`[browser] ${e.message}`));
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    await serving?.close().catch(() => {});
    await sb?.down();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test('a non-admin token gets the "administrators only" page', async () => {
    const userToken = await sb.token('ROLE_USER');
    await page.goto(`${serving.url}/`);
    await page.evaluate((t) => localStorage.setItem('access_token', t), userToken);
    await page.reload();
    await page.getByTestId('admin-only').waitFor();
    assert.match(await page.getByTestId('admin-only').innerText(), /Réservé aux administrateurs/);
    await shots('admin-only');
    await page.getByTestId('sign-out').click();
    await page.getByTestId('signin-form').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('access_token')), null);

    // a token the server refuses (401: signed with another secret) sends the user back to sign in
    const forged = await sb.token('ROLE_ADMIN', { secret: 'not-the-app-secret' });
    await page.evaluate((t) => localStorage.setItem('access_token', t), forged);
    await page.reload();
    await page.getByTestId('signin-notice').waitFor();
    await page.getByTestId('signin-form').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('access_token')), null, 'the refused token is dropped');
  });

  test('the start banner\'s sign-in link works as is: the token is kept and leaves the address bar', async () => {
    const token = await sb.token();
    await page.goto(`${serving.url}/#access_token=${token}`);
    await page.getByTestId('backup-page').waitFor();
    assert.equal(await page.evaluate(() => location.hash), '', 'the token is not left in the address bar');
    assert.equal(await page.evaluate(() => localStorage.getItem('access_token')), token);
    assert.equal(await page.getByTestId('username').innerText(), sb.admin.username);
    await page.getByTestId('sign-out').click();
    await page.getByTestId('signin-form').waitFor();
  });

  test('sign in through phpBorg\'s login, the token is kept like phpBorg keeps it', async () => {
    await page.goto(`${serving.url}/`);
    await page.getByTestId('signin-form').waitFor();
    await shots('signin');
    // the header toggle: dark on, remembered, off again
    await page.getByTestId('theme-toggle').click();
    assert.equal(await page.evaluate(() => document.documentElement.classList.contains('dark')), true);
    assert.equal(await page.evaluate(() => localStorage.getItem('keeper_theme')), 'dark');
    await page.getByTestId('theme-toggle').click();
    assert.equal(await page.evaluate(() => document.documentElement.classList.contains('dark')), false);
    await page.getByTestId('signin-username').fill(sb.admin.username);
    await page.getByTestId('signin-password').fill('wrong password');
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('signin-error').waitFor();
    // in the page's language, phpBorg's own words only under it
    assert.equal(await page.getByTestId('signin-error').getAttribute('data-code'), 'signin_failed');
    assert.equal(await page.getByTestId('signin-error').getByTestId('error-text').innerText(), 'Échec de la connexion : vérifiez l’identifiant et le mot de passe.');
    await page.getByTestId('signin-password').fill(sb.admin.password);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('backup-page').waitFor();
    assert.ok(await page.evaluate(() => localStorage.getItem('access_token')), 'access_token stored');
    assert.equal(await page.getByTestId('username').innerText(), sb.admin.username);
    // the same pages under /keeper/ (reverse proxy path), signed in with the same token
    await page.goto(`${serving.url}/keeper/`);
    await page.getByTestId('backup-page').waitFor();
    await page.getByTestId('stats-total').filter({ hasText: '0' }).waitFor();
    await page.goto(`${serving.url}/`);
    await page.getByTestId('backup-page').waitFor();
  });

  let filename = '';
  let downloaded = '';

  test('create a backup: the bar goes to the end, the new row appears, the download is the file', async () => {
    // every percent shown, recorded by the page itself
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __percents: string[] }).__percents = seen;
      new MutationObserver(() => {
        const el = document.querySelector('[data-testid="create-backup"] [data-testid="job-percent"]');
        if (el && seen[seen.length - 1] !== el.textContent) seen.push(el.textContent ?? '');
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId('backup-notes').fill('from the browser test');
    await page.getByTestId('create-backup-btn').click();
    await page.locator('[data-testid="create-backup"] [data-testid="job-backup"]').waitFor();
    await shots('backup-running');
    await page.locator('[data-testid="job-backup"][data-status="succeeded"]').waitFor({ timeout: 90_000 });
    const percents = await page.evaluate(() => (window as unknown as { __percents: string[] }).__percents);
    assert.equal(percents[percents.length - 1], '100%', `the bar ends at 100% (saw ${percents.join(' ')})`);
    assert.ok(percents.length >= 3, `progress was shown live (saw ${percents.join(' ')})`);
    assert.equal(await page.locator('[data-testid="create-backup"] [data-testid="job-bar"]').getAttribute('style'), 'width: 100%;');

    const list = await api<{ items: { id: number; filename: string; filepath: string }[] }>('/api/phpborg-backup/list');
    assert.equal(list.items.length, 1);
    filename = list.items[0].filename;
    const row = page.locator(`[data-testid="backup-row"][data-filename="${filename}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /from the browser test/);
    assert.match(await row.innerText(), /Manuelle/);
    await page.getByTestId('stats-total').filter({ hasText: '1' }).waitFor();
    await shots('backup-page');

    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('download').click()]);
    assert.equal(download.suggestedFilename(), filename);
    downloaded = join(profile, filename);
    await download.saveAs(downloaded);
    assert.equal(sha256(readFileSync(downloaded)), sha256(readFileSync(list.items[0].filepath)), 'downloaded bytes equal the archive');

    // verify: a job that lists each check
    await row.getByTestId('verify').click();
    await page.locator('[data-testid="verify-modal"] [data-testid="job-verify"][data-status="succeeded"]').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('verify-checks').innerText(), /SHA-256/);
    await page.getByTestId('verify-close').click();

    // times: in the install's zone, labelled, the browser's own (New York) in the tooltip
    const when = row.getByTestId('when');
    assert.match(await when.innerText(), /UTC\+1|CET/);
    assert.match((await when.getAttribute('title')) ?? '', /^Votre heure : .*(UTC−5|UTC-5|EST)/);
  });

  test('a backup still being written has no delete button', async () => {
    const id = insertBackup(runner.ledger, {
      filename: 'phpborg-backup-2030-01-01-000000-manual.tar.gz',
      filepath: join(sb.config.paths.storage, 'phpborg-backup-2030-01-01-000000-manual.tar.gz'),
      backup_type: 'manual',
      encrypted: false,
      created_at: '2030-01-01T00:00:00.000Z',
      created_by: 1,
      created_by_name: 'admin',
      status: 'creating',
    });
    try {
      await page.getByTestId('history-refresh').click();
      const row = page.locator(`[data-testid="backup-row"][data-id="${id}"]`);
      await row.getByTestId('creating-note').waitFor();
      assert.equal(await row.getByTestId('delete').count(), 0);
    } finally {
      deleteBackupRow(runner.ledger, id);
      await page.getByTestId('history-refresh').click();
    }
  });

  test('restore: the preview shows the server added since, then the restore succeeds', async () => {
    await sb.query("INSERT INTO servers (name, host) VALUES ('added-after-backup', 'after.example.lan')");
    const row = page.locator(`[data-testid="backup-row"][data-filename="${filename}"]`);
    await row.getByTestId('restore').click();
    await page.getByTestId('preview').waitFor({ timeout: 60_000 });
    assert.equal((await page.getByTestId('lost-servers-count').innerText()).trim(), '1');
    assert.match(await page.getByTestId('lost-servers').innerText(), /nouveau serveur ajouté depuis la sauvegarde/);
    assert.match(await page.getByTestId('restore-confirm').innerText(), /Je comprends, restaurer quand même/);
    // French typography: a no-break space before the colon
    assert.ok((await page.getByTestId('preview').textContent())!.includes('Date\u00a0:'), 'Date : with a no-break space');
    await shots('restore-preview', { full: false });
    await page.getByTestId('restore-confirm').click();
    await page.locator('[data-testid="restore-modal"] [data-testid="job-restore"]').waitFor();
    await page.locator('[data-testid="job-restore"][data-status="succeeded"]').waitFor({ timeout: 120_000 });
    assert.match(await page.locator('[data-testid="restore-modal"] [data-testid="job-succeeded"]').innerText(), /Restauration terminée/);
    await shots('restore-done', { full: false });
    await page.getByTestId('restore-close').click();
    const servers = await sb.query<{ n: number }>("SELECT COUNT(*) AS n FROM servers WHERE name = 'added-after-backup'");
    assert.equal(Number(servers[0].n), 0, 'the server added after the backup is gone');
    // the catalog still lists the backup and now the safety backup taken before the restore
    await page.locator('[data-testid="backup-row"]').nth(1).waitFor();
    assert.match(await page.getByTestId('history').innerText(), /Avant restauration/);
    // the automatic note is stored as a code and read in the page's language
    const safetyRow = page.locator('[data-testid="backup-row"]').filter({ hasText: 'Avant restauration' }).first();
    assert.equal(await safetyRow.getByTestId('backup-notes-text').innerText(), `Sauvegarde automatique avant la restauration de ${filename}`);
  });

  test('updates: check, changelog, apply, history row', async () => {
    await page.getByTestId('nav-updates').click();
    await page.getByTestId('updates-page').waitFor();
    await page.getByTestId('check-updates').click();
    await page.getByTestId('update-available').waitFor({ timeout: 60_000 });
    await page.getByTestId('latest-subjects').locator('li').first().waitFor();
    assert.match(await page.getByTestId('commits-behind').innerText(), /\d+ commits? d’avance/);
    await page.getByTestId('view-changelog').click();
    await page.getByTestId('changelog-commit').first().waitFor();
    const commits = await page.getByTestId('changelog-commit').count();
    assert.ok(commits >= 1, 'the changelog lists the commits');
    await shots('changelog', { full: false });
    await page.getByTestId('changelog-close').click();
    assert.match(await page.getByTestId('backup-warning').innerText(), /sauvegarde complète/);
    await shots('updates-available');

    await page.getByTestId('update-now').click();
    await page.getByTestId('update-confirm').click();
    await page.locator('[data-testid="update-available"] [data-testid="job-update"]').waitFor();
    await page.locator('[data-testid="job-update"][data-status="succeeded"]').waitFor({ timeout: 150_000 });
    const steps = await page.locator('[data-testid="job-steps"] li').allInnerTexts();
    assert.ok(steps.length >= 4, `the update is shown step by step (${steps.length} steps)`);
    assert.equal(new Set(steps).size, steps.length, `no step listed twice: ${steps.join(' | ')}`);
    // the card tells the truth without a reload
    await page.getByTestId('update-card-title').filter({ hasText: 'phpBorg a été mis à jour' }).waitFor();
    assert.doesNotMatch(await page.getByTestId('update-card-title').innerText(), /disponible/);
    assert.equal(await page.getByTestId('update-now').count(), 0);
    await page.locator('[data-testid="update-row"][data-status="succeeded"]').waitFor();
    await shots('updates-done');
  });

  test('update rollback: the same preview and confirmation, then the history says so', async () => {
    // on a phone, the history is cards with their actions
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId('update-card').first().waitFor();
    await shots('phone-update-history');
    await page.getByTestId('update-card').first().getByTestId('rollback').click();
    await page.getByTestId('preview').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('version-change').innerText(), /v1\.3\.0 → v1\.2\.3/);
    await shots('rollback-preview', { full: false });
    await page.getByTestId('restore-confirm').click();
    await page.locator('[data-testid="restore-modal"] [data-testid="job-rollback"][data-status="succeeded"]').waitFor({ timeout: 120_000 });
    await page.getByTestId('restore-close').click();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator('[data-testid="update-row"]').nth(1).waitFor();
    assert.match(await page.getByTestId('installed-version').innerText(), /v1\.2\.3/);
    // the rollback row looks like one; the update it undid no longer offers a rollback
    const rollbackRow = page.locator('[data-testid="update-row"][data-kind="rollback"]');
    assert.match(await rollbackRow.getByTestId('update-kind').innerText(), /Retour arrière/);
    const undone = page.locator('[data-testid="update-row"][data-kind="update"]').first();
    await undone.getByTestId('rolled-back-by').waitFor();
    assert.equal(await undone.getByTestId('rollback').count(), 0, 'a rolled-back update offers no rollback');
    await shots('updates-rolled-back');
  });

  test('history: pinned rows say why, filter by type, delete with confirmation, upload brings it back', async () => {
    await page.getByTestId('nav-backup').click();
    const pinned = page.locator('[data-testid="backup-row"]').filter({ has: page.getByTestId('pinned') }).first();
    await pinned.waitFor();
    assert.equal(await pinned.getByTestId('delete').isDisabled(), true, 'a pinned backup cannot be deleted');
    assert.match(await pinned.getByTestId('pin-reason').innerText(), /Épinglée/);

    await page.getByTestId('type-filter').selectOption('manual');
    await page.locator('[data-testid="backup-row"]').first().waitFor();
    assert.equal(await page.locator('[data-testid="backup-row"]').count(), 1, 'only the manual backup');
    const row = page.locator(`[data-testid="backup-row"][data-filename="${filename}"]`);
    await row.getByTestId('delete').click();
    await page.getByTestId('delete-confirm').click();
    await page.getByTestId('history-empty').waitFor();
    assert.equal((await api<{ total: number }>('/api/phpborg-backup/list?type=manual')).total, 0, 'deleted from the catalog');

    await page.getByTestId('upload-input').setInputFiles(downloaded);
    await page.getByTestId('upload-done').waitFor({ timeout: 60_000 });
    await row.waitFor();
    assert.match(await row.innerText(), /Téléversée/);
    // the same archive again: refused in the page's language, the server's words as the detail
    await page.getByTestId('upload-input').setInputFiles(downloaded);
    await page.getByTestId('upload-error').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('upload-error').getAttribute('data-code'), 'already_exists');
    assert.equal(await page.getByTestId('upload-error').getByTestId('error-text').innerText(), 'Cette sauvegarde est déjà sur le serveur.');
    assert.match(await page.getByTestId('upload-error').getByTestId('error-detail').innerText(), /already/);
    await page.getByTestId('type-filter').selectOption('');
    await shots('history-after-upload');
  });

  test('settings: errors beside the field, write-only passphrase with fingerprint, schedule and next run, emergency kit', async () => {
    await page.getByTestId('nav-backup').click();
    await page.getByTestId('backup-settings').waitFor();
    // SMTP is off in the sandbox's phpBorg: said beside the switch, which starts off
    await page.getByTestId('smtp-off').filter({ hasText: 'SMTP est désactivé dans phpBorg' }).waitFor();
    assert.equal(await page.getByTestId('field-email').isChecked(), false, 'notifications start off while SMTP cannot send');
    await page.getByTestId('test-email').click();
    await page.getByTestId('test-email-result').waitFor();
    assert.match(await page.getByTestId('test-email-result').getByTestId('error-text').innerText(), /^SMTP est désactivé dans phpBorg/);
    assert.match(await page.getByTestId('test-email-result').getByTestId('error-detail').innerText(), /smtp\.enabled/);
    // lowering the retention shows what the next backup would delete
    await page.getByTestId('field-retention').fill('1');
    await page.getByTestId('retention-preview').waitFor();
    const doomed = await api<{ delete: { filename: string }[] }>('/api/phpborg-backup/settings/retention-preview?keep=1');
    assert.equal(await page.getByTestId('retention-doomed').count(), doomed.delete.length);
    for (const d of doomed.delete) assert.match(await page.getByTestId('retention-preview').innerText(), new RegExp(d.filename.replace(/\./g, '\\.')));
    await page.getByTestId('field-retention').fill('0');
    await page.getByTestId('settings-save').click();
    await page.getByTestId('error-backup_retention_count').waitFor();
    // a value only the server refuses is shown beside its field too
    await page.getByTestId('field-retention').fill('7');
    await page.getByTestId('field-encryption').check();
    await page.getByTestId('settings-save').click();
    await page.getByTestId('error-backup_encryption_passphrase').waitFor();
    await page.getByTestId('field-passphrase').fill('correct horse battery staple');
    await page.getByTestId('field-scheduled').check();
    await page.getByTestId('field-day').selectOption('sunday');
    await page.getByTestId('field-time').fill('03:30');
    await page.getByTestId('settings-save').click();
    await page.getByTestId('settings-saved').waitFor();
    assert.equal(await page.getByTestId('field-passphrase').inputValue(), '', 'the passphrase is never shown back');
    assert.equal((await page.getByTestId('passphrase-state').innerText()).trim(), 'Définie');
    await page.getByTestId('passphrase-fingerprint').waitFor();
    await page.getByTestId('next-run').waitFor();
    const settings = await api<{ backup_retention_count: number; backup_scheduled_time: string; backup_encryption_passphrase: { set: boolean } }>('/api/phpborg-backup/settings');
    assert.equal(settings.backup_retention_count, 7);
    assert.equal(settings.backup_scheduled_time, '03:30');
    assert.equal(settings.backup_encryption_passphrase.set, true);
    await shots('settings');
    const [kit] = await Promise.all([page.waitForEvent('download'), page.getByTestId('emergency-kit').click()]);
    assert.match(readFileSync(await kit.path(), 'utf8'), /correct horse battery staple/);
  });

  test('another passphrase: the restore asks for it by its label and Enter sends it; verify says once what it could not check', async () => {
    const created = await api<{ job_id: string }>('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({ notes: 'encrypted' }), headers: { 'content-type': 'application/json' } });
    const job = await runner.jobs.wait(created.job_id, 120_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const name = (job.result as { filename: string }).filename;
    await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_encryption_passphrase: 'another passphrase now' }), headers: { 'content-type': 'application/json' } });
    await page.getByTestId('history-refresh').click();
    const row = page.locator(`[data-testid="backup-row"][data-filename="${name}"]`);
    await row.getByTestId('restore').click();
    await page.getByTestId('preview-error').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('preview-error').getAttribute('data-code'), 'wrong_passphrase');
    assert.match(await page.getByTestId('preview-error').getByTestId('error-text').innerText(), /^Phrase de passe incorrecte/);
    const field = page.getByLabel('Phrase de passe de cette sauvegarde chiffrée');
    await field.fill('not it either');
    await field.press('Enter');
    await page.getByTestId('preview-loading').waitFor({ state: 'detached', timeout: 60_000 });
    assert.equal(await page.getByTestId('preview-error').getAttribute('data-code'), 'wrong_passphrase');
    await field.fill('correct horse battery staple');
    await field.press('Enter');
    await page.getByTestId('preview').waitFor({ timeout: 60_000 });
    await shots('restore-passphrase', { full: false });
    await page.getByTestId('restore-cancel').click();

    // verify with the (now wrong) stored passphrase: the decisive failure once, the rest "not checked"
    await row.getByTestId('verify').click();
    await page.locator('[data-testid="verify-modal"] [data-testid="job-verify"][data-status="failed"]').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('[data-testid="verify-check"][data-state="failed"]').count(), 1);
    const skipped = page.locator('[data-testid="verify-check"][data-state="not-checked"]');
    assert.ok((await skipped.count()) >= 5);
    for (const text of await skipped.allInnerTexts()) assert.match(text, /non vérifié \(il faut la bonne phrase de passe\)/);
    assert.match(await page.locator('[data-testid="verify-modal"] [data-testid="job-error-text"]').innerText(), /^Phrase de passe incorrecte/);
    await shots('verify-wrong-passphrase', { full: false });
    await page.getByTestId('verify-close').click();
    await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_encryption_passphrase: 'correct horse battery staple' }), headers: { 'content-type': 'application/json' } });
  });

  test('French by default, English on the switch, and back', async () => {
    await page.getByTestId('nav-backup').click();
    assert.equal(await page.getByTestId('nav-backup').innerText(), 'Sauvegarde & restauration');
    await page.getByTestId('lang-en').click();
    assert.equal(await page.getByTestId('nav-backup').innerText(), 'Backup & Restore');
    await page.getByTestId('create-backup-btn').filter({ hasText: 'Create backup now' }).waitFor();
    assert.match(await page.getByTestId('history').innerText(), /Manual/);
    await shots('backup-page-en');
    await page.reload();
    assert.equal(await page.getByTestId('nav-backup').innerText(), 'Backup & Restore', 'the choice is remembered');
    await page.getByTestId('lang-fr').click();
    assert.equal(await page.getByTestId('nav-backup').innerText(), 'Sauvegarde & restauration');
  });

  test('usable on a phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId('backup-page').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no horizontal scrolling of the page on a phone (${overflow}px)`);
    await shots('phone-backup');
    await page.getByTestId('nav-updates').click();
    await page.getByTestId('updates-page').waitFor();
    await shots('phone-updates');
    await page.setViewportSize({ width: 1280, height: 900 });
  });
});
