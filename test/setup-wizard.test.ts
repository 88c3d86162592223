// The setup wizard's page in a real browser (playwright-core driving Debian's chromium) on a sandbox
// whose install is wiped (units stopped, code dir and state gone, database and its user dropped):
// sign-in is impossible; the link keeper prints opens the wizard with its token; a wrong passphrase
// is refused at the HMAC with nothing restored; the right one restores with live steps, ends with the
// health table and what to do next; then phpBorg's health passes and the wizard answers 403. Then an
// administrator proves the restored backup restorable with the history's drill button.
// French and English, light and dark, phone-sized; screenshots under var/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { keeperCli, lastJson, passphraseFile, patchConfig } from './support/install.ts';
import { startServer, type Runner, type Serving } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { ensureUiBuilt } from '../functions/ui/build.ts';
import { prepareSetupToken } from '../functions/setup/state.ts';
import { allUnits, maintenanceUnits } from '../runtime/install.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', 'var', 'screenshots');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSPHRASE = 'wizard passphrase';

let sb: Sandbox;
let runner: Runner;
let serving: Serving;
let ctx: BrowserContext;
let page: Page;
let profile: string;
let work: string;
let archive: string;
let setupToken: string;

async function shots(name: string): Promise<void> {
  const setDark = (on: boolean) => page.evaluate((v) => document.documentElement.classList.toggle('dark', v), on);
  for (const dark of [false, true]) {
    await setDark(dark);
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(SHOTS, `setup-${name}-${dark ? 'dark' : 'light'}.png`), fullPage: true });
  }
  await setDark(false);
}

/** The machine loses phpBorg: only MariaDB (no database, no user) and Redis keep running. */
async function wipe(): Promise<void> {
  const env = sb.readEnv().env;
  const c = sb.config;
  const r = await sb.systemctl('stop', ...allUnits(c, env));
  assert.equal(r.code, 0, r.stderr);
  await sb.rootQuery(`DROP DATABASE IF EXISTS \`${env.DB_NAME}\`; DROP USER IF EXISTS '${env.DB_USER}'@'localhost', '${env.DB_USER}'@'127.0.0.1'; FLUSH PRIVILEGES`);
  for (const d of [c.paths.ssh, c.paths.etc, c.paths.state, c.paths.storage]) rmSync(d, { recursive: true, force: true });
  // the code dir stays, empty
  rmSync(c.paths.code, { recursive: true, force: true });
  mkdirSync(c.paths.code, { recursive: true });
  for (const d of [c.paths.sudoers, c.paths.systemd]) {
    for (const n of readdirSync(d)) if (n.startsWith(c.file_prefix)) rmSync(join(d, n), { recursive: true, force: true });
  }
}

describe('setup wizard in chromium', { timeout: 240_000 }, () => {
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    assert.ok(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
    const [s] = await Promise.all([startSandbox(), ensureUiBuilt({ log: () => {} })]);
    sb = s;
    patchConfig(sb, { health_timeout_s: 20 });
    work = mkdtempSync(join(tmpdir(), 'keeper-wizard-test-'));
    const pass = passphraseFile(join(work, 'pass'), PASSPHRASE);
    let r = await keeperCli(sb, ['settings', 'set-passphrase', '--passphrase-file', pass, '--enable', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    r = await keeperCli(sb, ['backup', 'create', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const file = (lastJson(r.stdout) as { file: string }).file;
    archive = join(work, file.split('/').pop()!);
    copyFileSync(file, archive);
    await wipe();
    runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
    serving = await startServer(runner, { port: 0 });
    const setup = await prepareSetupToken(sb.config);
    assert.ok(setup, 'the wiped install is not initialized: a setup token is made');
    setupToken = setup.token;
    profile = mkdtempSync(join(tmpdir(), 'keeper-wizard-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 }, locale: 'fr-FR' });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => console.error(`[browser] ${e.message}`));
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    await serving?.close().catch(() => {});
    await sb?.down();
    for (const d of [profile, work]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('wiped install: sign-in is impossible, the wizard restores with live steps, then health passes and the wizard answers 403', async () => {
    // nobody can sign in: phpBorg's API and its database are gone
    await page.goto(`${serving.url}/`);
    await page.getByTestId('signin-form').waitFor();
    await page.getByTestId('signin-username').fill(sb.admin.username);
    await page.getByTestId('signin-password').fill(sb.admin.password);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('signin-error').waitFor();
    assert.equal((await runner.request('/api/health')).status, 503, 'health fails on the wiped install');

    // a wrong token: asked again
    await page.goto(`${serving.url}/setup`);
    await page.getByTestId('setup-token-form').waitFor();
    await page.getByTestId('setup-token').fill('0'.repeat(64));
    await page.getByTestId('setup-token-submit').click();
    await page.getByTestId('setup-token-error').waitFor();
    await shots('token');

    // the link keeper prints: the token in the fragment, then out of the address bar
    await page.goto(`${serving.url}/setup#setup_token=${setupToken}`);
    await page.getByTestId('setup-choice').waitFor();
    assert.match(await page.getByTestId('setup-choice').innerText(), /Restaurer une sauvegarde ou installer à neuf/);
    assert.ok(!page.url().includes(setupToken), 'the token is taken out of the address bar');
    await shots('choice');

    // phone-sized: nothing wider than the screen
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no horizontal scroll on a phone');
    await shots('choice-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // English
    await page.getByTestId('lang-en').click();
    assert.match(await page.getByTestId('setup-choice').innerText(), /Restore a backup or install fresh\?/);
    await page.getByTestId('setup-choose-fresh').click();
    await page.getByTestId('setup-fresh').waitFor();
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByTestId('lang-fr').click();
    await page.getByTestId('setup-choose-restore').click();

    // the wrong passphrase: refused at the HMAC, nothing laid down
    await page.getByTestId('setup-file').setInputFiles(archive);
    await page.getByTestId('setup-passphrase').fill('not the passphrase');
    await page.getByTestId('setup-start').click();
    await page.getByTestId('setup-refused').waitFor();
    assert.equal(await page.getByTestId('setup-refused').getAttribute('data-code'), 'wrong_passphrase');
    assert.deepEqual(readdirSync(sb.config.paths.code), [], 'nothing restored');
    await shots('refused');

    // the right one: verified, then the restore's live steps
    await page.getByTestId('setup-passphrase').fill(PASSPHRASE);
    await page.getByTestId('setup-start').click();
    await page.getByTestId('setup-verified').waitFor();
    assert.match(await page.getByTestId('setup-sha256').innerText(), /[0-9a-f]{64}/);
    assert.match(await page.getByTestId('setup-hmac').innerText(), /✓/);
    await page.getByTestId('job-steps').waitFor();
    await shots('restoring');
    await page.locator('[data-testid="job-setup"][data-status="succeeded"]').waitFor({ timeout: 180_000 });
    const steps = await page.getByTestId('job-steps').innerText();
    for (const s of [/base de données/i, /code/i, /configuration/i, /bon fonctionnement/i]) assert.match(steps, s);
    await page.getByTestId('setup-health').waitFor();
    const rows = page.getByTestId('setup-health-row');
    assert.ok((await rows.count()) >= 4, 'units, database, Redis, HTTP');
    for (const ok of await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-ok')))) assert.equal(ok, 'true');
    assert.match(await page.getByTestId('setup-next').innerText(), /Connectez-vous à phpBorg/);
    await shots('done');
    await page.getByTestId('lang-en').click();
    assert.match(await page.getByTestId('setup-next').innerText(), /Sign in to phpBorg/);
    await shots('done-en');
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'the end state fits a phone');
    await shots('done-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // phpBorg is back: its health passes, the wizard is closed, sign-in works again
    const health = await runner.request('/api/health');
    assert.equal(health.status, 200, await health.clone().text());
    const closed = await runner.request('/api/setup/status', { headers: { 'X-Setup-Token': setupToken } });
    assert.equal(closed.status, 403);
    assert.equal(((await closed.json()) as { error: { code: string } }).error.code, 'already_initialized');
    await page.goto(`${serving.url}/setup`);
    await page.getByTestId('setup-closed').waitFor();
    await shots('closed');
    const units = await sb.systemctl('is-active', ...maintenanceUnits(sb.config, sb.readEnv().env));
    assert.equal(units.code, 0, units.stdout);
  });

  test('an administrator proves the restored backup restorable with the history\'s drill button', async () => {
    // the new ledger holds no passphrase yet: without one an encrypted backup cannot be drilled
    const r = await keeperCli(sb, ['settings', 'set-passphrase', '--passphrase-file', passphraseFile(join(work, 'pass2'), PASSPHRASE), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await page.goto(`${serving.url}/`);
    await page.evaluate((t) => localStorage.setItem('access_token', t), await sb.token());
    await page.reload();
    const row = page.getByTestId('backup-row').first();
    await row.waitFor();
    await page.getByTestId('lang-fr').click();
    assert.match(await page.getByTestId('last-proven').innerText(), /jamais/);
    await row.getByTestId('drill').click();
    await page.waitForFunction(() => /Restauration prouvée|échoué/.test(document.querySelector('[data-testid="backup-row"] [data-testid="drill-status"]')?.textContent ?? ''), null, { timeout: 120_000 });
    const verdict = row.getByTestId('drill-status');
    assert.match(await verdict.innerText(), /Restauration prouvée/, `drill failed: ${await verdict.getAttribute('title')}`);
    assert.match(await page.getByTestId('last-proven').innerText(), /Dernière restauration prouvée : \d/);
    await shots('history-drill');
  });
});
