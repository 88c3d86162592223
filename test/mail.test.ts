// Mail notifications against the sandbox: phpBorg's smtp.* settings (the password decrypted with
// APP_SECRET and checked by the sink's AUTH), a local SMTP sink, real backups through the API.
// French and English, success and failure, retention cleanup, the test-email route, and an
// unreachable SMTP server that leaves the backup successful and an audit entry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { updateSettings } from '../state/settings.ts';
import { listAudit } from '../state/audit.ts';
import type { JobView } from '../state/jobs.ts';
import { decryptPhpborgSecret, encryptPhpborgSecret } from '../runtime/mailer.ts';
import { run } from '../runtime/exec.ts';
import { eventsForJob } from '../functions/notify/notify.ts';
import { renderMail } from '../functions/notify/templates.ts';
import { openLedger, ledgerPath } from '../state/ledger.ts';
import { makeTempInstall } from './support/runner.ts';

interface Received {
  auth: { username: string; password: string } | null;
  rcpt: string[];
  mail: ParsedMail;
}

describe('decryptPhpborgSecret', () => {
  test('opens what phpBorg stored, refuses another key, keeps legacy plain text', () => {
    const stored = encryptPhpborgSecret('p@ss wörd', 'app-secret');
    assert.equal(decryptPhpborgSecret(stored, 'app-secret'), 'p@ss wörd');
    assert.throws(() => decryptPhpborgSecret(stored, 'another-secret'), /cannot decrypt smtp\.password/);
    assert.equal(decryptPhpborgSecret('plain-password', 'app-secret'), 'plain-password');
    assert.equal(decryptPhpborgSecret('', 'app-secret'), '');
  });
});

describe('which mail a finished job calls for', () => {
  const job = (over: Partial<JobView>): JobView => ({
    id: 'job-1',
    type: 'backup.restore',
    status: 'succeeded',
    percent: 100,
    step: null,
    message: null,
    params: {},
    result: null,
    error: null,
    actor: { id: 1, name: 'admin' },
    helper_pid: null,
    created_at: '2025-01-24T13:00:00.000Z',
    started_at: '2025-01-24T13:00:01.000Z',
    finished_at: '2025-01-24T13:05:00.000Z',
    ...over,
  });

  test('restore, update and their failures, in both languages', () => {
    const inst = makeTempInstall();
    const ledger = openLedger(ledgerPath(inst.config.paths.state));
    try {
      const storage = inst.config.paths.storage;
      const restored = eventsForJob(ledger, job({ result: { outcome: 'succeeded', backup: { id: null, filename: 'phpborg-backup-2025-01-20-020000-scheduled.tar.gz' }, safety_backup: { id: 9, filename: 'phpborg-backup-2025-01-24-140000-pre_restore.tar.gz' } } }), storage);
      assert.equal(restored[0].kind, 'restore_completed');
      const fr = renderMail(restored[0], { lang: 'fr', timezone: 'Europe/Paris' });
      assert.equal(fr.subject, '[phpBorg] Restauration terminée');
      assert.ok(fr.text.includes('phpborg-backup-2025-01-20-020000-scheduled.tar.gz') && fr.text.includes('pre_restore'));

      const rolled = eventsForJob(ledger, job({ status: 'rolled_back', result: { outcome: 'rolled_back', changed: false, backup: { filename: 'b.tar.gz' }, failed_step: 'restore.database', error: { code: 'restore_failed', message: 'ERROR 1064 near x' } } }), storage);
      const en = renderMail(rolled[0], { lang: 'en', timezone: 'UTC' });
      assert.equal(en.subject, '[phpBorg] Restore Failed');
      assert.match(en.text, /Step: restore\.database/);
      assert.match(en.text, /Error: ERROR 1064 near x/);
      assert.match(en.text, /put back as it was before the restore/);

      const broken = eventsForJob(ledger, job({ status: 'failed', error: { code: 'restore_failed', message: 'it broke', step: 'restore.code', changed: true, details: { outcome: 'failed', changed: true, backup: { filename: 'b.tar.gz' }, failed_step: 'restore.code', error: { code: 'restore_failed', message: 'disk full' }, install_state: 'State: code half restored.', emergency_command: 'scripts/emergency-restore 3' } } }), storage);
      const fr2 = renderMail(broken[0], { lang: 'fr', timezone: 'UTC' });
      assert.equal(fr2.subject, '[phpBorg] Échec de la restauration');
      assert.match(fr2.text, /intervention manuelle nécessaire/);
      assert.match(fr2.text, /scripts\/emergency-restore 3/);

      const upOk = eventsForJob(ledger, job({ type: 'update.apply', result: { from_version: 'v1.2.3', to_version: 'v1.3.0' } }), storage);
      assert.equal(renderMail(upOk[0], { lang: 'en', timezone: 'UTC' }).subject, '[phpBorg] Update Completed');
      const upRolled = eventsForJob(ledger, job({ type: 'update.apply', status: 'rolled_back', result: { failed_step: 'update.migrations', error: { code: 'update_failed', message: 'migration 42 failed' } } }), storage);
      const m = renderMail(upRolled[0], { lang: 'fr', timezone: 'UTC' });
      assert.equal(m.subject, '[phpBorg] Échec de la mise à jour — retour arrière effectué');
      assert.match(m.text, /Étape : update\.migrations/);
      assert.match(m.text, /migration 42 failed/);
      const upRefused = eventsForJob(ledger, job({ type: 'update.apply', status: 'failed', error: { code: 'dirty', message: 'the git checkout has local changes', step: 'update.precheck' } }), storage);
      assert.equal(renderMail(upRefused[0], { lang: 'en', timezone: 'UTC' }).subject, '[phpBorg] Update Failed — Nothing Changed');
      // a manual update rollback (update.rollback) mails like a restore, naming the update
      const rbOk = eventsForJob(ledger, job({ type: 'update.rollback', params: { history_id: 4, force: false }, result: { outcome: 'succeeded', backup: { id: null, filename: 'phpborg-backup-2025-01-20-020000-pre_update.tar.gz' }, safety_backup: null, history_id: 5, update_id: 4 } }), storage);
      assert.equal(rbOk.length, 1);
      const rbFr = renderMail(rbOk[0], { lang: 'fr', timezone: 'UTC' });
      assert.equal(rbFr.subject, '[phpBorg] Mise à jour n° 4 annulée');
      assert.ok(rbFr.text.includes('phpborg-backup-2025-01-20-020000-pre_update.tar.gz'));
      const rbFail = eventsForJob(ledger, job({ type: 'update.rollback', status: 'failed', params: { history_id: 4, force: false }, error: { code: 'rollback_failed', message: 'it broke', step: 'restore.database', changed: true, details: { outcome: 'failed', changed: true, backup: { filename: 'b.tar.gz' }, failed_step: 'restore.database', error: { code: 'rollback_failed', message: 'ERROR 2002' }, update_id: 4, emergency_command: 'scripts/emergency-restore 7' } } }), storage);
      const rbEn = renderMail(rbFail[0], { lang: 'en', timezone: 'UTC' });
      assert.equal(rbEn.subject, '[phpBorg] Rollback of Update #4 Failed');
      assert.match(rbEn.text, /Step: restore\.database/);
      assert.match(rbEn.text, /scripts\/emergency-restore 7/);
      const rbRefused = eventsForJob(ledger, job({ type: 'update.rollback', status: 'failed', params: { history_id: 99, force: false }, error: { code: 'not_found', message: 'no update #99 in the history; nothing was changed', step: 'update.rollback', changed: false } }), storage);
      assert.equal(rbRefused[0].kind, 'restore_failed');
      assert.match(renderMail(rbRefused[0], { lang: 'en', timezone: 'UTC' }).text, /Nothing had been changed yet/);
      assert.deepEqual(eventsForJob(ledger, job({ type: 'system.services' }), storage), []);
    } finally {
      ledger.close();
      inst.cleanup();
    }
  });
});

describe('mail notifications (sandbox)', () => {
  let sb: Sandbox;
  let runner: Runner;
  let sink: SMTPServer;
  let sinkPort = 0;
  let smtpPassword = '';
  let token = '';
  const inbox: Received[] = [];

  const setPhpborg = (key: string, value: string) => sb.query('UPDATE settings SET `value` = ? WHERE `key` = ?', [value, key]);

  /** the next mail, waiting up to 15 s (mail goes out after the job is marked finished) */
  const nextMail = async (from: number): Promise<Received> => {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (inbox.length > from) return inbox[from];
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no mail arrived within 15 s');
  };

  const backup = async (): Promise<JobView> => {
    const res = await runner.request('/api/phpborg-backup/create', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 202, await res.clone().text());
    const { job_id } = (await res.json()) as { job_id: string };
    return runner.jobs.wait(job_id, 120_000);
  };

  before(async () => {
    sb = await startSandbox();
    // a fresh phpBorg has smtp.* empty (smtp.password ''): set them as an admin would in the UI
    smtpPassword = 'smtp-secret';
    let current: Received['auth'] = null;
    sink = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, cb) {
        // the password keeper sends must be phpBorg's smtp.password, decrypted
        if (auth.username === 'phpborg' && auth.password === smtpPassword) {
          current = { username: auth.username ?? '', password: auth.password ?? '' };
          return cb(null, { user: auth.username });
        }
        return cb(new Error('Invalid username or password'));
      },
      onData(stream, session, cb) {
        const rcpt = session.envelope.rcptTo.map((r) => r.address);
        simpleParser(stream)
          .then((mail) => {
            inbox.push({ auth: current, rcpt, mail });
            cb();
          })
          .catch(cb);
      },
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    sinkPort = (sink.server.address() as AddressInfo).port;
    await setPhpborg('smtp.enabled', '1');
    await setPhpborg('smtp.host', '127.0.0.1');
    await setPhpborg('smtp.port', String(sinkPort));
    await setPhpborg('smtp.username', 'phpborg');
    await setPhpborg('smtp.encryption', 'none');
    await setPhpborg('smtp.from_email', 'phpborg@phpborg.local');
    await setPhpborg('smtp.password', encryptPhpborgSecret('smtp-secret', sb.env.APP_SECRET));
    runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_notify_email: true });
    token = await sb.token();
  });

  after(async () => {
    await runner?.close();
    await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
    await sb?.down();
  });

  test('a successful backup is mailed in French, with the facts, over authenticated SMTP', async () => {
    const n = inbox.length;
    const job = await backup();
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const r = job.result as { file: string; filename: string; sha256: string; size_bytes: number };
    const m = await nextMail(n);
    assert.deepEqual(m.auth, { username: 'phpborg', password: smtpPassword });
    assert.deepEqual(m.rcpt, ['admin@phpborg.local']);
    assert.equal(m.mail.subject, '[phpBorg] Sauvegarde créée avec succès');
    assert.equal(m.mail.from?.value[0]?.address, 'phpborg@phpborg.local');
    const text = m.mail.text ?? '';
    assert.match(text, /^Bonjour,/);
    assert.ok(text.includes(`Fichier : ${r.filename}`), text);
    assert.ok(text.includes(`Empreinte (SHA256) : ${r.sha256}`), text);
    assert.ok(text.includes(r.file), 'location');
    assert.match(text, /Type : Sauvegarde manuelle/);
    assert.match(text, /Chiffrée : Non/);
    assert.match(text, /Créée par : admin/);
    assert.match(text, /Taille de la base de données : [\d,]+ (o|Ko|Mo) \([\d ]+ enregistrements\)/);
    assert.match(text, /Fichiers : [\d ]+/);
    assert.match(text, /Conservation des \d+ dernières sauvegardes/);
    assert.match(text, /Europe\/Paris/);
    const html = String(m.mail.html);
    assert.ok(html.includes(r.filename) && html.includes(r.sha256) && html.includes('<html lang="fr">'));
    const sent = listAudit(runner.ledger, { action: 'notify.email' }).items[0];
    assert.equal(sent.outcome, 'succeeded');
    assert.equal(sent.target, job.id);
    assert.ok(!JSON.stringify(sent).includes(smtpPassword));
  });

  test('a failed backup is mailed in French with the step and the error', async () => {
    const blocker = join(sb.dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: join(blocker, 'storage') });
    try {
      const n = inbox.length;
      const job = await backup();
      assert.equal(job.status, 'failed');
      const m = await nextMail(n);
      assert.equal(m.mail.subject, '[phpBorg] Échec de la sauvegarde');
      const text = m.mail.text ?? '';
      assert.ok(text.includes(`Étape : ${job.error?.step ?? '—'}`), text);
      assert.ok(text.includes(`Erreur : ${job.error!.message}`), text);
    } finally {
      updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: sb.config.paths.storage });
    }
  });

  test('in English when app.language is en: success, retention cleanup, failure', async () => {
    await setPhpborg('app.language', 'en');
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_retention_count: 1 });
    let n = inbox.length;
    const job = await backup();
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const r = job.result as { filename: string; retention: { deleted: { filename: string }[] } };
    assert.ok(r.retention.deleted.length >= 1, 'retention deleted the older manual backup');
    const m = await nextMail(n);
    assert.equal(m.mail.subject, '[phpBorg] Backup Created Successfully');
    assert.match(m.mail.text ?? '', /^Hello,/);
    assert.ok((m.mail.text ?? '').includes(`Filename: ${r.filename}`));
    assert.match(m.mail.text ?? '', /Encrypted: No/);
    assert.match(m.mail.text ?? '', /Keeping last 1 backups/);
    const cleanup = await nextMail(n + 1);
    assert.equal(cleanup.mail.subject, '[phpBorg] Old Backups Cleaned Up');
    for (const d of r.retention.deleted) assert.ok((cleanup.mail.text ?? '').includes(d.filename), 'names the deleted file');

    const blocker = join(sb.dir, 'not-a-dir-2');
    writeFileSync(blocker, 'x');
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: join(blocker, 'storage') });
    try {
      n = inbox.length;
      const failed = await backup();
      assert.equal(failed.status, 'failed');
      const f = await nextMail(n);
      assert.equal(f.mail.subject, '[phpBorg] Backup Failed');
      assert.ok((f.mail.text ?? '').includes(`Error: ${failed.error!.message}`));
      assert.match(f.mail.text ?? '', /Step: \S+/);
      assert.match(String(f.mail.html), /<html lang="en">/);
    } finally {
      updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: sb.config.paths.storage, backup_retention_count: 5 });
    }
  });

  test('a backup started from the CLI is mailed too (same job path, its own process)', async () => {
    const n = inbox.length;
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/keeper.ts', '--config', sb.info.config, '--json', 'backup', 'create', '--notes', 'from the CLI'], {
      cwd: join(import.meta.dirname, '..'),
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { filename: string };
    const m = await nextMail(n);
    assert.ok((m.mail.text ?? '').includes(result.filename), 'the mail names the CLI backup');
    assert.ok(listAudit(runner.ledger, { action: 'notify.email' }).items.some((e) => e.outcome === 'succeeded' && e.actor.name.startsWith('cli:')));
  });

  test('POST settings/test-email sends a test message (admin only)', async () => {
    const n = inbox.length;
    const res = await runner.request('/api/phpborg-backup/settings/test-email', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'ops@example.test' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const m = await nextMail(n);
    assert.equal(m.mail.subject, '[phpBorg] Test Email');
    assert.deepEqual(m.rcpt, ['ops@example.test']);
    const bad = await runner.request('/api/phpborg-backup/settings/test-email', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'not an address' }),
    });
    assert.equal(bad.status, 422);
    const user = await runner.request('/api/phpborg-backup/settings/test-email', {
      method: 'POST',
      headers: { authorization: `Bearer ${await sb.token('ROLE_USER')}` },
    });
    assert.equal(user.status, 403);
  });

  test('an unreachable SMTP server leaves the backup successful and an audit entry', async () => {
    await setPhpborg('smtp.port', '1'); // nothing listens there
    try {
      const job = await backup();
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      const deadline = Date.now() + 15_000;
      let failed;
      while (Date.now() < deadline) {
        failed = listAudit(runner.ledger, { action: 'notify.email' }).items.find((e) => e.target === job.id && e.outcome === 'failed');
        if (failed) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(failed, 'notify.email failed is audited');
      const details = failed.details as { reason: string; event: string };
      assert.equal(details.event, 'backup_created');
      assert.match(details.reason, /ECONNREFUSED|connect/i);
      assert.ok(!JSON.stringify(failed).includes(smtpPassword), 'no secret in the audit log');
      // the job itself stays succeeded
      assert.equal((await runner.jobs.wait(job.id)).status, 'succeeded');
      // and the API lists it, filtered by action
      const res = await runner.request('/api/phpborg-backup/audit?action=notify.email&per_page=5', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      const page = (await res.json()) as { items: { outcome: string }[]; total: number; per_page: number };
      assert.equal(page.per_page, 5);
      assert.equal(page.items[0].outcome, 'failed');
      const badQuery = await runner.request('/api/phpborg-backup/audit?page=0', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(badQuery.status, 422);
    } finally {
      await setPhpborg('smtp.port', String(sinkPort));
    }
  });

  test('notifications off: nothing is sent', async () => {
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_notify_email: false });
    const n = inbox.length;
    const job = await backup();
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(inbox.length, n);
    mkdirSync(sb.config.paths.storage, { recursive: true });
  });
});
