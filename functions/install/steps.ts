// The install steps every whole-install operation is made of (restore, update rollback, emergency and
// bare-metal restore; the update reuses stop, start and health): verify → free space → extract →
// safety point → stop units → database → code swap → configuration → start units → health. Each step
// keeps its undo right beside it; runtime/operation runs them, journals them and undoes them.
import { chmod, chown, copyFile, lstat, mkdir, readFile, rename, stat } from 'node:fs/promises';
import { removeTree } from '../../runtime/remove-tree.ts';
import { dirname, join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { hasCommand } from '../../runtime/exec.ts';
import { allUnits, envPath, maintenanceUnits, parseEnv, readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { drain } from '../../runtime/maintenance.ts';
import { importDatabase } from '../../runtime/mariadb-import.ts';
import type { OperationContext, SafetyPoint, Step } from '../../runtime/operation/index.ts';
import { probeTables, waitHealthy, type InstallHealth } from '../../runtime/probes.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { TaskError, type TaskContext } from '../../runtime/task.ts';
import {
  ENTRY, extractArchive, isArchiveError, readHead, structureChecks, verifyArchive, verifyIntegrity,
  type ArchiveError, type ArchiveMetadata, type BackupType, type Expected, type Head, type VerifyCheck,
} from '../../archive/index.ts';
import { asidePath, chownTree, exists, incomingPath, moveExcludedBack, replaceTree, resolveOwner, swapIn, syncPrefixed, tightenSsh, undoSwap, visudoCheck, type Ownership, type Swap } from '../restore/files.ts';
import { freeSpace } from '../restore/preview.ts';
import { accountProblem, databaseChange, databaseChangeMessage, databaseTargetProblem } from '../../runtime/db-guard.ts';
import { adminConnection, adminReachable, userHosts } from '../../runtime/mariadb-admin.ts';
import { autoNote } from '../backup/auto-notes.ts';
import { codeExcluder } from '../backup/sources.ts';

/** An archive an operation can fall back to, with what opens it. */
export interface SafetyRef extends SafetyPoint {
  /** null when the archive is not encrypted */
  passphrase: string | null;
  expected?: Expected;
}

/**
 * How the safety point is obtained: `create` takes a backup of the live install first; `skip` takes
 * none (a forced restore, or restoring the very archive that is the safety point); a function makes
 * one its own way (the emergency restore's safety copy).
 */
export type SafetyMode = 'create' | 'skip' | ((op: OperationContext) => Promise<SafetyRef>);

/** What an install operation is asked to do. */
export interface InstallTarget {
  /** absolute path of the archive */
  file: string;
  passphrase: string | null;
  /** size / sha256 / mac / key_check from the catalog or sidecar, checked before anything */
  expected?: Expected;
  /** catalog id of the archive (messages, the emergency command) */
  backupId: number | null;
  safetyMode: SafetyMode;
  /** type of the safety backup `create` takes (default pre_restore) */
  safetyType?: BackupType;
  /** go on when phpBorg jobs still run after the drain timeout (never kills them) */
  force?: boolean;
  /** credentials the database is imported with; default the live .env, else the archive's */
  env?: PhpborgEnv;
  /** where the safety backup goes, for the free-space check */
  storageDir: string;
  /** the archive's .env may name another DB_NAME / DB_USER than the live one */
  acceptDbChange?: boolean;
  /** runs in the database step (and its undo) before an import: the emergency and bare-metal
   * restores start MariaDB and create the database and its user there */
  prepareDatabase?: (env: PhpborgEnv) => Promise<void>;
  /** bare metal: nothing runs yet, the units may not exist before the configuration step */
  nothingRunning?: boolean;
  /** with no safety backup: the archive crash recovery restores instead (bare metal: this very
   * archive again, which finishes the restore forward) */
  recoverTo?: SafetyPoint;
  /** going back to a safety point of this very install: keep the code dir's excluded dirs
   * (caches, node_modules), which no archive holds */
  keepExcludedDirs?: boolean;
}

/** The state an install plan's steps share: what is asked, then what each step learned or did. */
export interface InstallState extends InstallTarget {
  config: KeeperConfig;
  /** unique per run: names the staging dir and the trees moved aside */
  tag: string;
  filename: string;
  /** the integrity checks after the verify step; the structural ones join them once extraction has read every entry */
  verify: VerifyCheck[];
  metadata: ArchiveMetadata | null;
  staging: string | null;
  safety: SafetyRef | null;
  owner: Ownership | null;
  /** credentials of the database step */
  dbEnv: PhpborgEnv | null;
  stopUnits: string[];
  codeSwap: Swap | null;
  /** excluded dirs the code step moved over from the previous tree (relative paths) */
  movedExcluded: string[];
  configSwaps: Swap[];
  health: InstallHealth | null;
  /** health after a rollback */
  rollbackHealth: InstallHealth | null;
  /** the safety archive extracted for an undo */
  rollbackStaging: string | null;
}

export function installState(config: KeeperConfig, jobId: string, t: InstallTarget): InstallState {
  return {
    ...t,
    config,
    tag: `${jobId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 24) || 'job'}-${Date.now().toString(36)}`,
    filename: t.file.split('/').pop()!,
    verify: [],
    metadata: null,
    staging: null,
    safety: null,
    owner: null,
    dbEnv: null,
    stopUnits: [],
    codeSwap: null,
    movedExcluded: [],
    configSwaps: [],
    health: null,
    rollbackHealth: null,
    rollbackStaging: null,
  };
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export const healthError = (h: InstallHealth) =>
  'health check failed: ' + h.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`).join('; ');

/** The live .env, or null when it is missing or incomplete. */
export function liveEnv(config: KeeperConfig): PhpborgEnv | null {
  try {
    return readEnv(config);
  } catch {
    return null;
  }
}

async function stagedEnv(staging: string): Promise<PhpborgEnv | null> {
  try {
    return parseEnv(await readFile(join(staging, ENTRY.env), 'utf8')).env;
  } catch {
    return null;
  }
}

/** A staging dir beside the code dir (same filesystem, so the code swap is a rename). */
export function stagingDir(config: KeeperConfig, tag: string): string {
  return join(dirname(config.paths.code), `.keeper-staging-${tag}`);
}

/** Extracts an archive into a fresh 0700 staging dir, journaled as a temporary before it exists. */
export async function extractToStaging(
  op: OperationContext,
  file: string,
  tag: string,
  o: { passphrase: string | null; expected?: Expected; integrityChecked?: boolean; onProgress?: (done: number, total: number) => void },
): Promise<string> {
  const dir = stagingDir(op.config, tag);
  op.ownTemp(dir);
  await removeTree(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await extractArchive(file, dir, { passphrase: o.passphrase, expected: o.expected, integrityChecked: o.integrityChecked, signal: op.signal, onProgress: o.onProgress });
  return dir;
}

/** The safety archive, extracted once for the undos that need it (database, configuration files). */
async function safetyStaging(op: OperationContext, s: InstallState): Promise<string> {
  if (s.rollbackStaging) return s.rollbackStaging;
  if (!s.safety) throw new Error('there is no safety backup to restore it from');
  // the restore's own staging is no longer needed: free its space first
  if (s.staging) {
    await removeTree(s.staging);
    op.releaseTemp(s.staging);
    s.staging = null;
  }
  s.rollbackStaging = await extractToStaging(op, s.safety.file, `${s.tag}-rb`, { passphrase: s.safety.passphrase, expected: s.safety.expected });
  return s.rollbackStaging;
}

/**
 * .env (temp file + rename, owner from config.owner or the file it replaces), phpborg-* sudoers
 * (visudo-checked when visudo exists) and phpborg-* systemd units, then daemon-reload: the config
 * files overwritten in place.
 */
async function applyConfigFiles(op: OperationContext, staging: string, owner: Ownership | null): Promise<void> {
  const { config } = op;
  const envSrc = join(staging, ENTRY.env);
  if (await exists(envSrc)) {
    const dest = envPath(config);
    const tmp = `${dest}.keeper-tmp`;
    op.ownTemp(tmp);
    await copyFile(envSrc, tmp);
    await chmod(tmp, (await stat(envSrc)).mode & 0o7777);
    if (owner) await chown(tmp, owner.uid, owner.gid);
    else if (await exists(dest)) {
      const st = await stat(dest);
      await chown(tmp, st.uid, st.gid);
    }
    await rename(tmp, dest);
    op.releaseTemp(tmp);
  } else op.log('warn', 'the archive holds no .env: the current one is kept');
  const visudo = (await hasCommand('visudo')) ? 'visudo' : null;
  await syncPrefixed(join(staging, ENTRY.sudoers), config.paths.sudoers, config.file_prefix, { check: (f) => visudoCheck(f, visudo) });
  await syncPrefixed(join(staging, ENTRY.systemd), config.paths.systemd, config.file_prefix);
  await serviceManager(config).daemonReload();
}

/** uid/gid of an existing path, null when it does not exist */
async function ownerOf(path: string): Promise<Ownership | null> {
  try {
    const st = await lstat(path);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}

/** /etc/phpborg or the SSH dir, swapped whole: the copy and the previous tree are journaled first. */
async function swapDir(op: OperationContext, s: InstallState, src: string | null, target: string): Promise<void> {
  op.ownTemp(incomingPath(target, s.tag));
  op.ownTemp(asidePath(target, s.tag), { aside: true });
  s.configSwaps.push(await replaceTree(src, target, s.tag));
  op.releaseTemp(incomingPath(target, s.tag));
}

// ── the steps ────────────────────────────────────────────────────────────────────────────────────

/** A refusal of the archive by its checks: the one error shape, whichever step found it. */
function failedVerification(prefix: string, s: InstallState, checks: VerifyCheck[], code: string | null, cause?: unknown): TaskError {
  s.verify = checks;
  const bad = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`);
  return new TaskError(code ?? 'verify_failed', `${s.filename} failed verification: ${bad.join('; ') || 'no metadata'}`, `${prefix}.verify`, { checks }, { cause });
}

const cannotRestore = (prefix: string, s: InstallState, e: unknown) =>
  new TaskError(isArchiveError(e) ? e.code : 'verify_failed', `${s.filename} cannot be restored: ${errorMessage(e)}`, `${prefix}.verify`, undefined, { cause: e });

/**
 * Errors of the archive's full pass that are verification failures (the archive is refused), not
 * failures to write the staging tree.
 */
const isStructural = (e: unknown): e is ArchiveError => isArchiveError(e) && e.code !== 'insufficient_space' && e.code !== 'io' && e.code !== 'aborted';

/**
 * 1. The checks before anything is written: size, SHA-256 and HMAC of the whole file, and its head
 * (metadata, .env) for the database guard. The structural checks of every entry (gzip, tar, layout,
 * manifest) run once, while the extract step reads the archive into staging, and fail as this step.
 */
export const verifyStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.verify`,
  weight: 3,
  message: (s) => `Verifying ${s.filename}`,
  async run(op, s) {
    op.setTarget({ id: s.backupId, file: s.file, filename: s.filename });
    const o = { passphrase: s.passphrase, expected: s.expected, signal: op.signal };
    const integ = await verifyIntegrity(s.file, o).catch((e: unknown) => {
      throw cannotRestore(prefix, s, e);
    });
    if (integ.code !== null) {
      // refused: every check's state, as `backup verify` reports it (a second read, on failure only)
      const v = await verifyArchive(s.file, o).catch((e: unknown) => {
        throw cannotRestore(prefix, s, e);
      });
      throw failedVerification(prefix, s, v.checks, v.code ?? integ.code);
    }
    s.verify = integ.checks;
    const head = await readHead(s.file, o).catch((e: unknown) => {
      throw isArchiveError(e) ? failedVerification(prefix, s, [...integ.checks, ...structureChecks(e)], e.code, e) : cannotRestore(prefix, s, e);
    });
    s.metadata = head.metadata;
    await guardDatabase(op, s, head, `${prefix}.verify`);
  },
});

/**
 * What the archive's .env would point the restore at, refused before anything changes: MariaDB's own
 * schemas and accounts, an account someone else owns (asked as the admin when the restore will create
 * accounts and MariaDB answers), and — without acceptDbChange — another database or user than the
 * live .env's.
 */
async function guardDatabase(op: OperationContext, s: InstallState, head: Head, step: string): Promise<void> {
  let archiveEnv: PhpborgEnv | null = null;
  const text = head.config.get(ENTRY.env);
  if (text) archiveEnv = (() => {
    try {
      return parseEnv(text.toString('utf8')).env;
    } catch {
      return null;
    }
  })();
  const targets: [PhpborgEnv | null | undefined, string][] = [[archiveEnv, "the archive's .env"], [s.env, 'the .env used for the import']];
  for (const [env, what] of targets) {
    const problem = env ? databaseTargetProblem(env, what) : null;
    if (problem) throw new TaskError('unsafe_database', problem, step, { DB_NAME: env!.DB_NAME, DB_USER: env!.DB_USER }, { changed: false });
  }
  const changes = databaseChange(liveEnv(op.config), archiveEnv);
  if (changes.length && !s.acceptDbChange) {
    throw new TaskError('database_change_unconfirmed', databaseChangeMessage(changes), step, { changes }, { changed: false });
  }
  const creates = s.prepareDatabase ? (s.env ?? archiveEnv) : null;
  if (creates && (await adminReachable(op.config)).ok) {
    const c = await adminConnection(op.config);
    try {
      const refused = await accountProblem(c, creates.DB_USER, userHosts(creates));
      if (refused) throw new TaskError('unsafe_database', refused, step, { DB_USER: creates.DB_USER }, { changed: false });
    } finally {
      await c.end().catch(() => {});
    }
  }
}

/** 2. Room for the staging tree (and the safety backup). */
export const freeSpaceStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.free_space`,
  weight: 1,
  message: 'Checking free space',
  async run(op, s) {
    const size = (await stat(s.file)).size;
    // the metadata's size is only a claim, read before the manifest is: it can raise the estimate,
    // never lower it below the archive's own size; extraction counts what it writes and stops
    // above the filesystem's margin whatever was claimed
    const measured = { ...s.metadata!, total_size_bytes: Math.max(s.metadata!.total_size_bytes, size) };
    const fs = await freeSpace(op.config, measured, size, { storageDir: s.storageDir, safety: s.safetyMode !== 'skip', ledger: op.ledger });
    const short = fs.paths.filter((p) => p.available < p.needed);
    if (short.length) {
      const what = short.map((p) => `${p.path} needs ${mib(p.needed)} but has ${mib(p.available)} free`).join('; ');
      throw new TaskError('insufficient_space', `not enough free space: ${what}. Free ${mib(Math.max(...short.map((p) => p.needed - p.available)))} and try again`, `${prefix}.free_space`, fs);
    }
  },
});

/**
 * 3. The archive into a staging dir beside the code dir: the one full pass (decrypt, gunzip, every
 * entry against the layout and the manifest), which completes the verify step's checks before
 * anything live changes. A refused archive fails as the verify step, with its checks.
 */
export const extractStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.extract`,
  weight: 20,
  message: 'Extracting and checking the archive in a staging dir',
  completes: `${prefix}.verify`,
  async run(op, s) {
    s.staging = await extractToStaging(op, s.file, s.tag, {
      passphrase: s.passphrase,
      expected: s.expected,
      integrityChecked: true, // the verify step has just checked this very file
      onProgress: (d, t) => op.step(d / Math.max(t, 1), 'Extracting', { done: d, total: t }),
    }).catch((e: unknown) => {
      if (isStructural(e)) throw failedVerification(prefix, s, [...s.verify, ...structureChecks(e)], e.code, e);
      throw new TaskError(isArchiveError(e) ? e.code : 'extract_failed', `extraction failed: ${errorMessage(e)}`, `${prefix}.extract`, undefined, { cause: e });
    });
    s.verify = [...s.verify, ...structureChecks(null)];
    await prepareInstall(op.config, s);
  },
});

/** 4. The archive a failure rolls back to: a backup of the live install, or one made elsewhere. */
export const safetyStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.safety_backup`,
  weight: 20,
  message: (s) => (s.safetyMode === 'skip' ? 'No safety backup (skipped on request)' : 'Taking a safety backup of the current install'),
  async run(op, s) {
    if (s.safetyMode === 'skip') {
      if (s.recoverTo) op.setSafetyPoint(s.recoverTo);
      return;
    }
    const make = s.safetyMode === 'create' ? () => createSafetyBackup(op, s, prefix) : s.safetyMode;
    try {
      s.safety = await make(op);
    } catch (e) {
      const code = e instanceof TaskError ? e.code : 'safety_backup_failed';
      throw new TaskError(code, `the safety backup failed: ${errorMessage(e)}`, `${prefix}.safety_backup`, e instanceof TaskError ? e.details : undefined, { cause: e });
    }
    op.setSafetyPoint({ id: s.safety.id, file: s.safety.file, filename: s.safety.filename });
  },
});

/** A backup of the live install through the backup core (loaded lazily: restoring must not need it). */
async function createSafetyBackup(op: OperationContext, s: InstallState, prefix: string): Promise<SafetyRef> {
  const { createBackup } = await import('../backup/core.ts');
  // no retention here: it could delete the very archive being restored
  const r = await createBackup(op, {
    type: s.safetyType ?? 'pre_restore',
    notes: autoNote('before_restore', { file: s.filename }),
    force: !!s.force,
    stepPrefix: `${prefix}.safety_backup`,
    percentRange: op.stepRange(),
    retention: false,
  });
  return { id: r.id, filename: r.filename, file: r.file, passphrase: r.passphrase, expected: { sha256: r.sha256, size_bytes: r.size_bytes, mac: r.mac } };
}

/** 5. Drain phpBorg's jobs, then stop the units (journaled first). Undo: start them again. */
export const stopUnitsStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.stop_units`,
  weight: 3,
  message: (s) => `Stopping ${s.stopUnits.length} unit(s)`,
  when: (s) => !s.nothingRunning,
  // stopping can fail half-way: whatever was stopped is started again
  undoFirst: true,
  async run(op, s) {
    if (s.dbEnv) {
      await drain(s.dbEnv, {
        timeoutS: op.config.drain_timeout_s,
        force: s.force,
        signal: op.signal,
        onDbError: 'skip',
        onWait: (running, ms) => op.step(0, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: ms }),
      });
    }
    op.unitsStopping(s.stopUnits);
    await serviceManager(op.config).stop(s.stopUnits);
  },
  async undo(op, s) {
    await startUnits(op, s);
  },
});

async function startUnits(op: OperationContext, s: InstallState): Promise<void> {
  const env = liveEnv(op.config);
  await serviceManager(op.config).start([...new Set([...s.stopUnits, ...(env ? allUnits(op.config, env) : [])])]);
  op.unitsStarted();
}

/** Works out the credentials and units the later steps use (no change to the install). */
export async function prepareInstall(config: KeeperConfig, s: InstallState): Promise<void> {
  s.owner = await resolveOwner(config.owner);
  const live = liveEnv(config);
  const backupEnv = s.staging ? await stagedEnv(s.staging) : null;
  s.dbEnv = s.env ?? live ?? backupEnv;
  s.stopUnits = maintenanceUnits(config, live ?? backupEnv ?? { WORKER_POOL_SIZE: 4 });
}

/** 6. The database from database.sql. Undo: the safety backup's database.sql. */
export const databaseStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.database`,
  weight: 12,
  message: 'Recreating the database from database.sql',
  touches: ['database'],
  run: (op, s) => loadDatabase(op, s, s.staging!, s.dbEnv, op.signal),
  async undo(op, s) {
    const staging = await safetyStaging(op, s);
    // an undo is not cancelled: it is what puts the install back
    await loadDatabase(op, s, staging, s.dbEnv ?? (await stagedEnv(staging)));
  },
});

/** database.sql of an extracted archive into the database `env` reaches (created first when asked). */
async function loadDatabase(op: OperationContext, s: InstallState, staging: string, env: PhpborgEnv | null, signal?: AbortSignal): Promise<void> {
  if (!env) throw new Error('no usable .env (live or in the archive) to reach the database');
  if (s.prepareDatabase) await s.prepareDatabase(env);
  await importDatabase(env, join(staging, ENTRY.database), { signal, onLine: (l) => op.log('warn', `mariadb: ${l}`) });
}

/** 7. The staged code tree renamed into place, the previous one moved aside. Undo: put it back. */
export const codeStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.code`,
  weight: 8,
  message: 'Swapping the code tree',
  touches: ['code'],
  async run(op, s) {
    const src = join(s.staging!, ENTRY.code);
    if (!(await lstat(src).then((st) => st.isDirectory(), () => false))) throw new Error('the archive holds no code/ tree');
    if (s.owner) await chownTree(src, s.owner);
    op.ownTemp(asidePath(op.config.paths.code, s.tag), { aside: true });
    s.codeSwap = await swapIn(src, op.config.paths.code, s.tag);
    // going back to the install's own recent state: its caches and node_modules (never archived) stay
    if (s.keepExcludedDirs && s.codeSwap.aside) {
      s.movedExcluded = await moveExcludedBack(s.codeSwap.aside, op.config.paths.code, codeExcluder(op.config.exclude_dirs));
    }
  },
  async undo(op, s) {
    const swap = s.codeSwap ?? { target: op.config.paths.code, aside: (await exists(asidePath(op.config.paths.code, s.tag))) ? asidePath(op.config.paths.code, s.tag) : null };
    // nothing was moved aside: the swap never started, the code dir is as it was
    if (!s.codeSwap && !swap.aside) return;
    // what run moved over from the previous tree goes back into it first
    if (swap.aside) for (const rel of s.movedExcluded.splice(0)) await rename(join(swap.target, rel), join(swap.aside, rel));
    await undoSwap(swap);
    if (swap.aside) op.releaseTemp(swap.aside);
    s.codeSwap = null;
  },
});

/**
 * 8. .env, phpborg-* sudoers and units, /etc/phpborg and the two SSH dirs (phpborg's and
 * phpborg-borg's; 0700/0600, each swapped whole).
 * Undo: the dirs moved aside go back exactly; the files overwritten in place come from the safety backup.
 */
export const configStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.config`,
  weight: 6,
  message: 'Restoring .env, sudoers, systemd units, /etc/phpborg and the SSH dirs',
  touches: ['config', 'keys'],
  async run(op, s) {
    const { config } = op;
    await applyConfigFiles(op, s.staging!, s.owner);
    const etcSrc = join(s.staging!, ENTRY.etc);
    await swapDir(op, s, (await exists(etcSrc)) ? etcSrc : null, config.paths.etc);
    const sshSrc = join(s.staging!, ENTRY.ssh);
    await swapDir(op, s, (await exists(sshSrc)) ? sshSrc : null, config.paths.ssh);
    if (await exists(config.paths.ssh)) {
      await tightenSsh(config.paths.ssh);
      if (s.owner) await chownTree(config.paths.ssh, s.owner);
    }
    // phpborg-borg's SSH dir belongs to that user, not to config.owner (sshd ignores an
    // authorized_keys its user does not own): it keeps the owner of the dir it replaces, or of the
    // home it lands in. An archive made before this dir was backed up leaves the live one alone.
    const borgSrc = join(s.staging!, ENTRY.sshBorg);
    if (await exists(borgSrc)) {
      const borgOwner = (await ownerOf(config.paths.ssh_borg)) ?? (await ownerOf(dirname(config.paths.ssh_borg))) ?? s.owner;
      await swapDir(op, s, borgSrc, config.paths.ssh_borg);
      await tightenSsh(config.paths.ssh_borg);
      if (borgOwner) await chownTree(config.paths.ssh_borg, borgOwner);
    } else op.log('warn', `the archive holds no ${ENTRY.sshBorg}/: ${config.paths.ssh_borg} is kept as it is`);
  },
  async undo(op, s) {
    for (const swap of [...s.configSwaps].reverse()) {
      await undoSwap(swap);
      if (swap.aside) op.releaseTemp(swap.aside);
    }
    s.configSwaps = [];
    await applyConfigFiles(op, await safetyStaging(op, s), s.owner);
  },
});

/** 9. The units the restored .env asks for. Undo: stop them again before the other undos run. */
export const startUnitsStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.start_units`,
  weight: 3,
  message: 'Starting the units',
  undoFirst: true,
  async run(op, s) {
    await startUnits(op, s);
  },
  async undo(op, s) {
    const units = [...new Set([...s.stopUnits, ...maintenanceUnits(op.config, liveEnv(op.config) ?? { WORKER_POOL_SIZE: 4 })])];
    op.unitsStopping(units);
    await serviceManager(op.config).stop(units);
  },
});

/** 10. Units active, database, Redis, HTTP: retried until health_timeout_s. */
export const healthStep = (prefix: string): Step<InstallState> => ({
  key: `${prefix}.health`,
  weight: 8,
  message: 'Checking health: units, database, Redis, HTTP',
  async run(op, s) {
    const env = readEnv(op.config);
    const tables = Object.keys(s.metadata?.table_row_counts ?? {});
    s.health = await waitHealthy(op.config, env, op.signal, async () => (tables.length ? [await probeTables(env, tables)] : []));
    if (!s.health.ok) throw new Error(healthError(s.health));
  },
});

/** After a rollback: the install must be healthy again. */
export async function healthAfterRollback(op: OperationContext, s: InstallState): Promise<void> {
  s.rollbackHealth = await waitHealthy(op.config, readEnv(op.config), op.signal);
  if (!s.rollbackHealth.ok) throw new Error(healthError(s.rollbackHealth));
}

/** What the install looks like after a failure that could not be undone. */
export function describeInstallState(s: InstallState, touched: readonly string[]): string {
  const parts: string[] = [];
  parts.push(touched.includes('database') ? 'the database was replaced (possibly partially)' : 'the database is unchanged');
  parts.push(s.codeSwap ? `the code dir holds the restored tree, the previous one is at ${s.codeSwap.aside}` : touched.includes('code') ? 'the code dir may be half-swapped' : 'the code dir holds its previous tree');
  parts.push(touched.includes('config') ? 'configuration files were (partly) replaced' : 'configuration is unchanged');
  const asides = s.configSwaps.filter((w) => w.aside).map((w) => w.aside);
  if (asides.length) parts.push(`previous config dirs are kept at ${asides.join(', ')}`);
  parts.push('the units are stopped');
  return `State: ${parts.join('; ')}.`;
}
