// The emergency restore itself, for scripts/emergency-restore: the runner is not running, MariaDB may
// be stopped or its database dropped, the code dir damaged, .env gone. It drives the restore core
// (functions/restore/apply.ts restoreInstall: verify → extract → safety → stop → database → code →
// configuration → start → health, with its automatic rollback) with three emergency parts:
//   - the safety copy is functions/emergency/safety.ts (works without a database), after starting
//     MariaDB if it is down so that the copy holds the database whenever it still exists;
//   - the database step first recreates the database and its user from the BACKUP's .env (root over
//     config.mariadb_admin.socket) when they are gone;
//   - the ledger: used when readable; created anew (catalog rebuilt from the sidecars) when missing;
//     left untouched when corrupt (a throw-away ledger carries the run's journal).
// Progress goes to a terminal as numbered steps.
import { removeTree } from '../../runtime/remove-tree.ts';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { parseEnv, readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { checkInstall, type Check } from '../../runtime/probes.ts';
import { ensureDatabaseAndUser, ensureServerUp } from '../../runtime/mariadb-admin.ts';
import { TaskError, type Actor, type TaskContext } from '../../runtime/task.ts';
import { keeperTempDir } from '../../runtime/temp.ts';
import { openLedger, type Ledger } from '../../state/ledger.ts';
import { audit } from '../../state/audit.ts';
import { getSettings } from '../../state/settings.ts';
import { getBackupByFilename } from '../../state/catalog.ts';
import { faultPoint, type OperationContext } from '../../runtime/operation/index.ts';
import { ENTRY, isArchiveError, readHead, type Expected } from '../../archive/index.ts';
import { restoreInstall, type RestoreResult, type SafetyRef } from '../restore/apply.ts';
import { listFromSidecars, registerFound, type FoundBackup, type LedgerState } from './catalog.ts';
import { takeSafetyCopy, type SafetyCopy } from './safety.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export interface EmergencyUi {
  /** a numbered step: "[n/N] key: text" */
  step(n: number, total: number, key: string, text: string): void;
  /** a line under the current step */
  detail(text: string): void;
}

export interface EmergencyOptions {
  config: KeeperConfig;
  configPath: string;
  backup: FoundBackup;
  passphrase: string | null;
  ledger: LedgerState;
  /** the storage dir the list came from (safety copy goes there too) */
  storage: string;
  actor: Actor;
  ui: EmergencyUi;
  signal?: AbortSignal;
  /** the backup's .env may name another DB_NAME / DB_USER than the live one (--accept-db-change) */
  acceptDbChange?: boolean;
}

export interface EmergencyOutcome {
  ok: boolean;
  /** one sentence: what happened */
  message: string;
  /** the restore core's result; null when it stopped before it started */
  restore: RestoreResult | null;
  safety: SafetyCopy | null;
  /** the final health checks (units, database, Redis, HTTP) */
  health: Check[];
  /** what happened to the ledger */
  ledger_note: string;
  /** true when the install was not touched at all ("nothing was changed" is rendered from it) */
  nothing_changed: boolean;
}

/** The numbered steps, in order, with the step keys the restore plan reports (and the job log shows). */
export const EMERGENCY_STEPS = [
  { key: 'emergency.read', text: 'Reading the backup (metadata and its .env)' },
  { key: 'restore.verify', text: 'Verifying the archive (size, SHA-256, HMAC, gzip, tar, manifest)' },
  { key: 'restore.extract', text: 'Checking free space and extracting to a staging dir' },
  { key: 'restore.safety_backup', text: 'Safety copy of the current installation' },
  { key: 'restore.stop_units', text: 'Stopping phpBorg services' },
  { key: 'restore.database', text: 'Restoring the database' },
  { key: 'restore.code', text: 'Restoring the code' },
  { key: 'restore.config', text: 'Restoring configuration and SSH keys' },
  { key: 'restore.start_units', text: 'Starting phpBorg services' },
  { key: 'restore.health', text: 'Health check' },
  { key: 'emergency.record', text: 'Recording in the ledger' },
] as const;

const STEP_OF: Record<string, number> = {
  ...Object.fromEntries(EMERGENCY_STEPS.map((s, i) => [s.key, i + 1])),
  'restore.free_space': 3,
};

/** The .env inside the archive, parsed; throws a clear error when absent or incomplete. */
export async function backupEnvOf(file: string, passphrase: string | null, expected: Expected): Promise<{ env: PhpborgEnv; head: Awaited<ReturnType<typeof readHead>> }> {
  const head = await readHead(file, { passphrase, expected });
  const text = head.config.get(ENTRY.env);
  if (!text) throw new TaskError('no_env', `${file.split('/').pop()} holds no ${ENTRY.env}: its database credentials are unknown`);
  try {
    return { env: parseEnv(text.toString('utf8')).env, head };
  } catch (e) {
    throw new TaskError('bad_env', `the .env inside ${file.split('/').pop()} is unusable: ${errorMessage(e)}`);
  }
}

/** The archive-error codes that mean "this file cannot be read as it is" (nothing changed). */
export function describeArchiveFailure(e: unknown): { code: string; message: string } {
  if (e instanceof TaskError) return { code: e.code, message: e.message };
  if (isArchiveError(e)) return { code: e.code, message: e.message };
  return { code: 'failed', message: errorMessage(e) };
}

/** The ledger this run records in: the real one, a new one when missing, a throw-away one when corrupt. */
async function openRunLedger(o: EmergencyOptions, say: (t: string) => void): Promise<{ ledger: Ledger; usable: boolean; note: string; cleanup: () => Promise<void> }> {
  const s = o.ledger;
  if (s.state === 'ok') return { ledger: openLedger(s.file), usable: true, note: `ledger ${s.file}`, cleanup: async () => {} };
  if (s.state === 'missing') {
    const ledger = openLedger(s.file);
    say(`the ledger was missing: created a new one at ${s.file}`);
    const ids = registerFound(ledger, await listFromSidecars(o.storage), { actor: o.actor });
    say(`catalog rebuilt from ${ids.size} sidecar(s) in ${o.storage}`);
    return { ledger, usable: true, note: `new ledger ${s.file} (catalog rebuilt from the sidecars)`, cleanup: async () => {} };
  }
  say(`the ledger at ${s.file} is corrupt (${s.error}): it is left untouched; nothing will be recorded in it`);
  // the restore core journals its steps: a throw-away ledger holds them for this run
  const dir = await keeperTempDir('emergency-ledger', o.config.paths.state);
  return {
    ledger: openLedger(join(dir, 'ledger.sqlite')),
    usable: false,
    note: `ledger ${s.file} is corrupt: left untouched, nothing recorded`,
    cleanup: () => removeTree(dir),
  };
}

export async function emergencyRestore(o: EmergencyOptions): Promise<EmergencyOutcome> {
  const { config, ui } = o;
  const N = EMERGENCY_STEPS.length;
  let current = 0;
  let lastDetail = '';
  const enter = (n: number) => {
    if (n <= current) return;
    current = n;
    lastDetail = '';
    ui.step(n, N, EMERGENCY_STEPS[n - 1].key, EMERGENCY_STEPS[n - 1].text);
  };
  const detail = (t: string) => {
    if (t === lastDetail) return;
    lastDetail = t;
    ui.detail(t);
  };
  const expected: Expected = { sha256: o.backup.sha256, size_bytes: o.backup.size_bytes, mac: o.backup.mac, key_check: o.backup.key_check };
  const out: EmergencyOutcome = { ok: false, message: '', restore: null, safety: null, health: [], ledger_note: '', nothing_changed: true };

  // 1. the backup's own .env: the only credentials used
  enter(1);
  let backupEnv: PhpborgEnv;
  try {
    backupEnv = (await backupEnvOf(o.backup.file, o.passphrase, expected)).env;
    detail(`database ${backupEnv.DB_NAME} as ${backupEnv.DB_USER} (from the backup's .env), ${backupEnv.WORKER_POOL_SIZE} worker(s)`);
  } catch (e) {
    const f = describeArchiveFailure(e);
    out.message = `${o.backup.filename} cannot be read (${f.code}): ${f.message}`;
    if (o.ledger.state === 'ok') {
      const l = openLedger(o.ledger.file);
      try {
        record(l, true, o, out, 'refused', { error: f });
      } finally {
        l.close();
      }
    }
    return out;
  }

  // the ledger: real, new, or a throw-away one when corrupt
  const opened = await openRunLedger(o, detail);
  const ledger = opened.ledger;
  out.ledger_note = opened.note;
  const backupId = opened.usable ? (getBackupByFilename(ledger, o.backup.filename)?.id ?? null) : null;

  const jobId = `emergency-${new Date().toISOString().replace(/[^0-9]/g, '').slice(0, 14)}`;
  const ctx: TaskContext = {
    config,
    configPath: o.configPath,
    jobId,
    actor: o.actor,
    ledger,
    progress(step, _percent, message) {
      const n = STEP_OF[step];
      if (step === 'restore.rollback') {
        detail(`ROLLBACK: ${message}`);
        return;
      }
      if (n) enter(n);
      const header = n ? EMERGENCY_STEPS[n - 1].text : '';
      if (message && message !== header) detail(message);
      faultPoint(step);
    },
    log(level, message) {
      detail(`${level === 'info' ? '' : `${level}: `}${message}`);
    },
    signal: o.signal ?? new AbortController().signal,
    now: () => new Date(),
  };

  // the safety copy's passphrase: the stored one when encryption is on, else the restored archive's
  let safetyPassphrase: string | null = o.passphrase;
  if (opened.usable) {
    const s = getSettings(ledger, config.paths.storage);
    if (s.backup_encryption_enabled && s.backup_encryption_passphrase) safetyPassphrase = s.backup_encryption_passphrase;
  }
  let live: PhpborgEnv | null = null;
  try {
    live = readEnv(config);
  } catch {
    live = null;
  }

  const safety = async (op: OperationContext): Promise<SafetyRef> => {
    try {
      const r = await ensureServerUp(config, live ?? backupEnv, detail);
      if (r === 'started') detail('MariaDB started, so that the safety copy can hold the database');
    } catch (e) {
      detail(`MariaDB could not be started (${errorMessage(e)})`);
    }
    const copy = await takeSafetyCopy({
      config,
      dir: o.storage,
      ledger: opened.usable ? ledger : null,
      journal: { ledger: op.ledger, id: op.journalId },
      backupEnv,
      passphrase: safetyPassphrase,
      actor: o.actor,
      now: new Date(),
      log: detail,
      signal: ctx.signal,
    });
    out.safety = copy;
    detail(`safety copy: ${copy.file}${copy.database_skipped ? ' (files only: database skipped)' : ' (files and database)'}`);
    return {
      id: copy.id,
      filename: copy.filename,
      file: copy.file,
      passphrase: copy.encrypted ? safetyPassphrase : null,
      expected: { sha256: copy.sha256, size_bytes: copy.size_bytes, mac: copy.mac },
    };
  };

  try {
    let restore: RestoreResult;
    try {
      restore = await restoreInstall(ctx, {
        file: o.backup.file,
        passphrase: o.passphrase,
        expected,
        backupId,
        safetyMode: safety,
        safetyType: 'pre_emergency_restore',
        // phpBorg jobs left 'running' by dead workers must not block an emergency: wait the drain
        // timeout, then go on (running processes are never killed)
        force: true,
        env: backupEnv,
        storageDir: o.storage,
        acceptDbChange: o.acceptDbChange,
        prepareDatabase: async (env) => {
          const r = await ensureDatabaseAndUser(config, env, detail);
          if (r.server === 'started') detail('MariaDB was down: started it');
        },
      }, { kind: 'emergency' });
    } catch (e) {
      const f = describeArchiveFailure(e);
      out.message = f.message;
      record(ledger, opened.usable, o, out, 'refused', { error: f });
      return out;
    }
    out.restore = restore;
    if (restore.outcome === 'failed' && !restore.changed) {
      out.message = restore.message;
      record(ledger, opened.usable, o, out, 'refused', { error: restore.error ?? null });
      return out;
    }
    out.nothing_changed = false;

    // final health: each unit, database, Redis, HTTP
    let env: PhpborgEnv | null = null;
    try {
      env = readEnv(config);
    } catch (e) {
      out.health = [{ name: 'env', ok: false, latency_ms: 0, error: errorMessage(e) }];
    }
    if (env) out.health = (await checkInstall(config, env)).checks;
    const healthy = out.health.length > 0 && out.health.every((c) => c.ok);
    out.ok = restore.outcome === 'succeeded' && healthy;
    out.message = restore.outcome === 'succeeded' && !healthy ? `${restore.message}; but the health check fails now` : restore.message;

    enter(11);
    if (opened.usable) {
      record(ledger, true, o, out, out.ok ? 'succeeded' : restore.outcome, {
        failed_step: restore.failed_step ?? null,
        error: restore.error?.message ?? null,
      });
      detail(`recorded in ${opened.note}`);
    } else detail(`not recorded: ${opened.note}`);
    return out;
  } finally {
    ledger.close();
    await opened.cleanup();
  }
}

function record(ledger: Ledger, usable: boolean, o: EmergencyOptions, out: EmergencyOutcome, outcome: string, extra: Record<string, unknown>): void {
  if (!usable) return;
  try {
    audit(ledger, {
      actor: o.actor,
      action: 'emergency.restore',
      target: o.backup.filename,
      outcome,
      details: {
        backup: { id: o.backup.id, filename: o.backup.filename },
        safety_backup: out.safety ? { id: out.safety.id, filename: out.safety.filename, database_skipped: out.safety.database_skipped } : null,
        message: out.message,
        ...extra,
      },
    });
  } catch {
    /* the terminal report matters more */
  }
}
