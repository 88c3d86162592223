// THE route table: every route and its guard, in one screen. Handlers are thin and live in
// functions/<area>/<op>.ts; they reach the world only through bindings (c.env).
// Others: add your lines in your section with one small edit; keep one route per line.
import { Hono } from 'hono';
import type { AppEnv } from '../runtime/bindings.ts';
import { adminGuard, requireAdmin as admin } from '../runtime/auth.ts';
import { notFound, onError } from '../runtime/errors.ts';
import { healthHandler } from './system/health.ts';
import { servicesHandler } from './system/services.ts';
import { getJobHandler, listJobsHandler } from './jobs/get.ts';
import { jobEventsHandler } from './jobs/events.ts';
import { createBackupHandler } from './backup/create.ts';
import { deleteHandler as deleteBackup, getHandler as getBackup, listHandler as listBackups, statsHandler as backupStats } from './backup/catalog.ts';
import { downloadGuard, downloadHandler, downloadTokenHandler } from './backup/download.ts';
import { getSettingsHandler, putSettingsHandler, retentionPreviewHandler } from './backup/settings.ts';
import { verifyBackupHandler } from './backup/verify.ts';
import { drillBackupHandler } from './backup/drill.ts';
import { uploadHandler } from './backup/upload.ts';
import { previewGetHandler, previewPostHandler, restoreHandler } from './restore/handlers.ts';
import { uiConfigHandler, uiSessionHandler } from './ui/config.ts';
import { keeperApi, serveUi } from './ui/serve.ts';
import { auditHandler } from './audit/list.ts';
import { testEmailHandler } from './notify/test-email.ts';
import { emergencyKitHandler } from './kit/emergency-kit.ts';
import { setupEventsGuard, setupGuard, setupJobGuard, setupRestoreHandler, setupStatusHandler } from './setup/handlers.ts';
import { getUpdateStatus } from './update/status.ts';
import { checkHandler } from './update/check.ts';
import { getChangelog } from './update/changelog.ts';
import { applyHandler } from './update/apply.ts';
import { getUpdateHistory } from './update/history.ts';
import { rollbackHandler, rollbackPreviewHandler } from './update/rollback.ts';
import { pushHandler as offsitePush, targetsHandler as offsiteTargets, testHandler as offsiteTest } from './offsite/routes.ts';

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(notFound);

  // ── platform ────────────────────────────────────────────────────────────────────────────────
  app.get('/api/health', healthHandler); //                                        public
  app.get('/api/system/services', admin, servicesHandler); //                      admin, job (waits ≤10 s)
  app.get('/api/jobs', admin, listJobsHandler); //                                 admin
  app.get('/api/jobs/:id', admin, getJobHandler); //                               admin
  app.get('/api/jobs/:id/events', adminGuard({ allowQueryToken: true }), jobEventsHandler); // admin, SSE

  // ── backup: catalog, create, download, settings ─────────────────────────────────────────────
  app.post('/api/phpborg-backup/create', admin, createBackupHandler); //           admin, job backup.create
  app.get('/api/phpborg-backup/list', admin, listBackups); //                      admin
  app.get('/api/phpborg-backup/stats', admin, backupStats); //                     admin
  app.get('/api/phpborg-backup/settings', admin, getSettingsHandler); //           admin (passphrase: set + fingerprint)
  app.put('/api/phpborg-backup/settings', admin, putSettingsHandler); //           admin, 422 names the key
  app.get('/api/phpborg-backup/:id{[0-9]+}', admin, getBackup); //                 admin
  app.delete('/api/phpborg-backup/:id{[0-9]+}', admin, deleteBackup); //           admin, 409 pinned / in use
  app.post('/api/phpborg-backup/:id{[0-9]+}/download-token', admin, downloadTokenHandler); // admin
  app.get('/api/phpborg-backup/:id{[0-9]+}/download', downloadGuard, downloadHandler); // admin, or ?token=

  // ── restore: verify, preview, restore, upload ───────────────────────────────────────────────
  app.post('/api/phpborg-backup/:id{[0-9]+}/verify', admin, verifyBackupHandler); //      admin, job backup.verify
  app.post('/api/phpborg-backup/:id{[0-9]+}/drill', admin, drillBackupHandler); //        admin, job backup.drill (scratch database, live install untouched)
  app.get('/api/phpborg-backup/:id{[0-9]+}/restore-preview', admin, previewGetHandler); // admin, stored passphrase, waits ≤30 s
  app.post('/api/phpborg-backup/:id{[0-9]+}/restore-preview', admin, previewPostHandler); // admin, {passphrase} in body
  app.post('/api/phpborg-backup/upload', admin, uploadHandler); //                 admin, multipart file (+ passphrase), 201/413/422
  app.post('/api/phpborg-backup/:id{[0-9]+}/restore', admin, restoreHandler); //     admin, {confirm: true}, job backup.restore

  // ── off-site copies: targets, copy now, test connection ─────────────────────────────────────
  app.get('/api/phpborg-backup/offsite', admin, offsiteTargets); //                admin, targets (no secrets) + last success
  app.post('/api/phpborg-backup/:id{[0-9]+}/offsite', admin, offsitePush); //      admin, {target?}, job offsite.push
  app.post('/api/phpborg-backup/offsite/:name/test', admin, offsiteTest); //       admin, job offsite.test (write, read back, delete)

  // ── update: status, check, changelog, apply, history, rollback ──────────────────────────────
  app.get('/api/phpborg-update/status', admin, getUpdateStatus); //                 admin, local refs only
  app.post('/api/phpborg-update/check', admin, checkHandler); //                    admin, job update.check (git fetch)
  app.get('/api/phpborg-update/changelog', admin, getChangelog); //                admin, ?limit&offset
  app.post('/api/phpborg-update/apply', admin, applyHandler); //                    admin, job update.apply {target?}
  app.get('/api/phpborg-update/history', admin, getUpdateHistory); //              admin, ?limit&offset
  app.get('/api/phpborg-update/rollback/:historyId{[0-9]+}/preview', admin, rollbackPreviewHandler); // admin, job (waits)
  app.post('/api/phpborg-update/rollback/:historyId{[0-9]+}', admin, rollbackHandler); // admin, job update.rollback {confirm}

  // ── schedule, email, audit, emergency kit ───────────────────────────────────────────────────
  app.get('/api/phpborg-backup/audit', admin, auditHandler); //                    admin, ?page&per_page&action
  app.get('/api/phpborg-backup/settings/retention-preview', admin, retentionPreviewHandler); // admin, ?keep=N: what the next backup would delete
  app.post('/api/phpborg-backup/settings/test-email', admin, testEmailHandler); // admin, audited, 502 when unsent
  app.get('/api/phpborg-backup/settings/emergency-kit', admin, emergencyKitHandler); // admin, audited, text/plain attachment

  // ── setup wizard (guarded by the one-time setup token, not admin) ───────────────────────────
  app.get('/api/setup/status', setupGuard, setupStatusHandler); //                setup token, 403 once initialized
  app.post('/api/setup/restore', setupGuard, setupRestoreHandler); //             setup token, multipart file (+ passphrase), job setup.restore
  app.get('/api/setup/jobs/:id', setupJobGuard, getJobHandler); //                 X-Setup-Token header, setup.restore jobs only
  app.get('/api/setup/jobs/:id/events', setupEventsGuard, jobEventsHandler); //    X-Setup-Token (or ?setup_token=, SSE only), SSE

  // ── ui ──────────────────────────────────────────────────────────────────────────────────────
  app.get('/api/ui/config', uiConfigHandler); //                                   public (sign-in page: login_url)
  app.get('/api/ui/session', admin, uiSessionHandler); //                           admin (who am I; 401/403 steer the pages)
  app.all('/keeper/api/*', keeperApi(app)); //                                     same routes behind a /keeper/ proxy prefix
  app.get('*', serveUi); //                                                        public static UI at / and /keeper/ (keep last)

  return app;
}
