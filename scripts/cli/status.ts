// keeper status: versions, units, database/Redis, ledger, storage, next scheduled backup.
import { accessSync, constants, existsSync, readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { allUnits, readEnv } from '../../runtime/install.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { probeDatabase, probeHttp, probeRedis, type Check } from '../../runtime/probes.ts';
import { borgVersion, gitCommit, phpborgVersion, phpVersion } from '../../runtime/versions.ts';
import { nextScheduledBackup } from '../../runtime/boot.ts';
import { ledgerPath, schemaVersion } from '../../state/ledger.ts';
import { countJobs, getJob, lockHolder } from '../../state/jobs.ts';
import { catalogStats, lastProvenRestorable } from '../../state/catalog.ts';
import { installConsistency, storageDir } from '../../functions/system/health.ts';
import { targetsView } from '../../functions/offsite/routes.ts';
import { PROJECT_ROOT, type CliContext, type CliTopCommand } from './framework.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { localTime } from './time.ts';

export interface StatusResult {
  ok: boolean;
  config: string;
  versions: { keeper: string; node: string; phpborg: string | null; commit: string | null; php: string | null; borg: string | null; mariadb: string | null };
  units: { unit: string; state: string; active: boolean }[];
  checks: Check[];
  ledger: { path: string; schema_version: number; backups: number; jobs: number; running_job: { id: string; type: string; percent: number; step: string | null } | null };
  storage: { path: string; exists: boolean; writable: boolean; free_bytes: number | null };
  /** the off-site targets as configured (no secret) and how their copies stand */
  offsite: ReturnType<typeof targetsView>;
  next_scheduled_backup: string | null;
  /** the newest passed restore drill: when a backup was last proven restorable (null: never) */
  last_proven_restorable: { backup_id: number; filename: string; at: string } | null;
  /** set when the next backup catches up a missed run: that run's due time */
  next_scheduled_backup_catch_up_of: string | null;
}

async function status(ctx: CliContext): Promise<StatusResult> {
  const config = ctx.config();
  const ledger = ctx.ledger();
  const keeper = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const checks: Check[] = [];
  let units: StatusResult['units'] = [];
  try {
    const env = readEnv(config);
    const sm = serviceManager(config);
    units = await Promise.all(
      allUnits(config, env).map(async (unit) => {
        const state = await sm.state(unit).catch(() => 'unknown');
        return { unit, state, active: state === 'active' };
      }),
    );
    checks.push(await probeDatabase(env), await probeRedis(env), await probeHttp(config.phpborg_api.health_url));
  } catch (e) {
    checks.push({ name: 'env', ok: false, latency_ms: 0, error: errorMessage(e) });
  }
  checks.push(await installConsistency(ledger));
  const holder = lockHolder(ledger);
  const running = holder ? getJob(ledger, holder) : undefined;
  const dir = storageDir({ config, ledger });
  const exists = existsSync(dir);
  let writable = false;
  let free: number | null = null;
  try {
    accessSync(exists ? dir : join(dir, '..'), constants.W_OK);
    writable = true;
  } catch {
    /* not writable */
  }
  try {
    const s = statfsSync(exists ? dir : join(dir, '..'));
    free = s.bavail * s.bsize;
  } catch {
    /* unknown */
  }
  const next = await nextScheduledBackup({ config, configPath: ctx.configPath(), ledger });
  const proven = lastProvenRestorable(ledger);
  const result: StatusResult = {
    ok: false,
    config: ctx.configPath(),
    versions: {
      keeper,
      node: process.version,
      phpborg: await phpborgVersion(config.paths.code),
      commit: await gitCommit(config.paths.code),
      php: await phpVersion(),
      borg: await borgVersion(),
      mariadb: checks.find((c) => c.name === 'database' && c.ok)?.detail ?? null,
    },
    units,
    checks,
    ledger: {
      path: ledgerPath(config.paths.state),
      schema_version: schemaVersion(ledger),
      backups: catalogStats(ledger).total,
      jobs: countJobs(ledger),
      running_job: running ? { id: running.id, type: running.type, percent: running.percent, step: running.step } : null,
    },
    storage: { path: dir, exists, writable, free_bytes: free },
    offsite: targetsView(config, ledger),
    next_scheduled_backup: next.next_run,
    last_proven_restorable: proven ? { backup_id: proven.id, filename: proven.filename, at: proven.drill_at } : null,
    next_scheduled_backup_catch_up_of: next.catch_up_of,
  };
  result.ok = units.every((u) => u.active) && checks.every((c) => c.ok) && writable;
  return result;
}

const human = (n: number | null) => {
  if (n === null) return '?';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};

export const statusCommand: CliTopCommand = {
  usage: 'keeper status [--json]',
  positionals: { max: 0 },
  run: (ctx) => status(ctx),
  render(r, ctx) {
    const s = r as StatusResult;
    const mark = (ok: boolean) => (ok ? 'ok ' : 'ERR');
    const v = s.versions;
    ctx.print(`phpBorg   ${v.phpborg ?? '?'} (${v.commit?.slice(0, 12) ?? 'no git'})   php ${v.php ?? '-'}, borg ${v.borg ?? '-'}, MariaDB ${v.mariadb ?? '?'}`);
    ctx.print(`keeper    ${v.keeper}, node ${v.node}`);
    ctx.print(`config    ${s.config}`);
    ctx.print('units:');
    for (const u of s.units) ctx.print(`  ${mark(u.active)} ${u.unit.padEnd(28)} ${u.state}`);
    for (const c of s.checks) ctx.print(`  ${mark(c.ok)} ${c.name.padEnd(28)} ${c.ok ? (c.detail ?? 'ok') : c.error}  (${c.latency_ms} ms)`);
    ctx.print(`ledger    ${s.ledger.path} (schema v${s.ledger.schema_version}, ${s.ledger.backups} backups, ${s.ledger.jobs} jobs)`);
    if (s.ledger.running_job) ctx.print(`running   ${s.ledger.running_job.type} ${s.ledger.running_job.id} ${Math.round(s.ledger.running_job.percent)}% ${s.ledger.running_job.step ?? ''}`);
    ctx.print(`storage   ${s.storage.path} ${s.storage.exists ? '' : '(not created yet) '}${s.storage.writable ? 'writable' : 'NOT WRITABLE'}, ${human(s.storage.free_bytes)} free`);
    for (const t of s.offsite) {
      ctx.print(
        `off-site  ${t.name} (${t.where}${t.enabled ? '' : ', disabled'}, keep ${t.keep}): last success ${t.last_success ?? 'never'}` +
          `${t.failed ? `, ${t.failed} failed copy(ies): ${t.last_error ?? ''}` : ''}${t.pending ? `, ${t.pending} pending` : ''}`,
      );
    }
    const catchUp = s.next_scheduled_backup_catch_up_of ? ` (catch-up of the run missed at ${localTime(s.next_scheduled_backup_catch_up_of)}: starts when the runner runs it)` : '';
    ctx.print(`next scheduled backup: ${s.next_scheduled_backup ? localTime(s.next_scheduled_backup) : 'none'}${catchUp}`);
    const p = s.last_proven_restorable;
    ctx.print(`last proven restorable: ${p ? `${localTime(p.at)} (backup ${p.backup_id}, ${p.filename}; keeper drill)` : 'never (run keeper drill)'}`);
    ctx.print(s.ok ? 'status: ok' : 'status: degraded');
  },
};
