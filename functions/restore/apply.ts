// The whole-install restore as a plan of install steps, run by the operation runner: verify → free
// space → extract → safety backup → stop units → database → code → configuration → start units →
// health. Nothing live changes before the safety backup exists; a failure after it is undone step by
// step (back to the safety backup) and the result says so. Used by the restore task, the update's
// rollback, the manual rollback, the emergency and the bare-metal restore. Never restores the ledger.
import { runOperation, type OperationResult, type Plan } from '../../runtime/operation/index.ts';
import type { InstallHealth } from '../../runtime/probes.ts';
import type { TaskContext } from '../../runtime/task.ts';
import { settleInconsistent } from '../../state/operations.ts';
import type { VerifyCheck } from '../../archive/index.ts';
import { join } from 'node:path';
import { exists } from './files.ts';
import {
  codeStep,
  configStep,
  databaseStep,
  describeInstallState,
  extractStep,
  freeSpaceStep,
  healthAfterRollback,
  healthStep,
  installState,
  safetyStep,
  startUnitsStep,
  stopUnitsStep,
  verifyStep,
  type InstallState,
  type InstallTarget,
} from '../install/steps.ts';

export type { InstallTarget, SafetyMode, SafetyRef } from '../install/steps.ts';

export interface RestoreResult extends OperationResult {
  backup: { id: number | null; filename: string };
  safety_backup: { id: number | null; filename: string } | null;
  verify: VerifyCheck[];
  health: InstallHealth | null;
  /** the health of the install after a rollback */
  rollback_health?: InstallHealth | null;
  /**
   * frontend/node_modules is excluded from archives: after a restore it is missing while
   * frontend/package.json says the frontend needs it; null when there is no frontend or nothing is missing
   */
  frontend: FrontendState | null;
}

export interface FrontendState {
  node_modules_missing: true;
  /** frontend/dist is what the web server serves: present, phpBorg's UI works as restored */
  dist_present: boolean;
  hint: string;
}

/** What a restored code dir lacks of the frontend (node_modules is never archived). */
export async function frontendState(codeDir: string): Promise<FrontendState | null> {
  const fe = join(codeDir, 'frontend');
  if (!(await exists(join(fe, 'package.json'))) || (await exists(join(fe, 'node_modules')))) return null;
  const dist = await exists(join(fe, 'dist'));
  return {
    node_modules_missing: true,
    dist_present: dist,
    hint:
      `${fe}/node_modules is not in backups: run "npm ci" in ${fe} before the next frontend build` +
      (dist ? ' (the restored frontend/dist is served as it is)' : ', then "npm run build": frontend/dist is missing too'),
  };
}

export interface RestoreOptions {
  /** the journal's name for it: restore, rollback, emergency, bare_metal, recovery */
  kind?: string;
  /** the step keys' prefix (default "restore") */
  prefix?: string;
  /** the part of the job's 0–100 it reports in */
  percent?: [number, number];
  /** nested in another operation: journal into its entry */
  journalId?: number;
}

/** The restore plan over an archive. */
export function restorePlan(ctx: TaskContext, target: InstallTarget, o: RestoreOptions = {}): Plan<InstallState> {
  const prefix = o.prefix ?? 'restore';
  return {
    kind: o.kind ?? 'restore',
    state: installState(ctx.config, ctx.jobId, target),
    percent: o.percent,
    rollbackKey: `${prefix}.rollback`,
    steps: [
      verifyStep(prefix),
      freeSpaceStep(prefix),
      extractStep(prefix),
      safetyStep(prefix),
      stopUnitsStep(prefix),
      databaseStep(prefix),
      codeStep(prefix),
      configStep(prefix),
      startUnitsStep(prefix),
      healthStep(prefix),
    ],
    afterRollback: healthAfterRollback,
    describeState: describeInstallState,
    emergencyTarget: (s) => (s.safety ? { id: s.safety.id, file: s.safety.file } : { id: s.backupId, file: s.file }),
    safetyName: (s) => s.safety?.filename ?? null,
  };
}

/** Restores the whole install from an archive; the result says succeeded, rolled_back or failed. */
export async function restoreInstall(ctx: TaskContext, target: InstallTarget, o: RestoreOptions = {}): Promise<RestoreResult> {
  const plan = restorePlan(ctx, target, o);
  const r = await runOperation(ctx, plan, { journalId: o.journalId });
  const s = plan.state;
  const result: RestoreResult = {
    ...r,
    backup: { id: s.backupId, filename: s.filename },
    safety_backup: s.safety ? { id: s.safety.id, filename: s.safety.filename } : null,
    verify: s.verify,
    health: s.health,
    ...(r.outcome === 'succeeded' ? {} : { rollback_health: s.rollbackHealth }),
    // after a rollback too: the code dir put back is the one that was there, or the safety backup's
    frontend: r.outcome === 'failed' ? null : await frontendState(ctx.config.paths.code).catch(() => null),
  };
  if (r.outcome === 'succeeded') {
    // a whole install is back: what earlier operations left half-changed is settled
    if (o.journalId === undefined) settleInconsistent(ctx.ledger, r.operation_id);
    result.message =
      `restored ${s.filename}` + (s.safety ? `; safety backup ${s.safety.filename}` : '') + (result.frontend ? `; ${result.frontend.hint}` : '');
    ctx.progress(`${o.prefix ?? 'restore'}.health`, o.percent?.[1] ?? 100, result.message);
  }
  return result;
}
