// keeper restore <id|file> [--preview] [--yes] [--passphrase-file F] [--force] [--skip-safety-backup]
// keeper backup verify <id|file> [--passphrase-file F]   (verifyCommand, listed in the backup group)
// Same tasks as the API (backup.restore_preview, backup.restore, backup.verify), through the helper.
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import { listBackups } from '../../state/catalog.ts';
import { createInterface } from 'node:readline/promises';
import type { RestorePreview } from '../../functions/restore/preview.ts';
import type { RestoreResult } from '../../functions/restore/apply.ts';
import type { VerifyTaskResult } from '../../functions/backup/verify.task.ts';
import { CliError, runTaskFromCli, usageError, type CliCommand, type CliContext, type ParsedArgs, type CliTopCommand } from './framework.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { pullFromTarget, targetArg } from './offsite.ts';
import { localTime } from './time.ts';

/**
 * `12` → {backup_id: 12}; an existing file → that file; otherwise part of a catalogued archive's
 * name (e.g. its date, like the emergency restore takes) when exactly one matches.
 */
export function archiveRef(arg: string | undefined, ctx?: CliContext): { backup_id: number } | { file: string } {
  if (!arg) throw usageError('which backup? give its id (keeper backup list) or an archive file');
  if (/^\d+$/.test(arg)) return { backup_id: Number(arg) };
  const file = isAbsolute(arg) ? arg : resolve(arg);
  if (existsSync(file) || !ctx) return { file };
  const part = basename(arg);
  const hits = listBackups(ctx.ledger(), { status: 'succeeded' }).filter((b) => b.filename.includes(part));
  if (hits.length === 1) return { backup_id: hits[0]!.id };
  if (hits.length > 1) {
    throw usageError(`"${arg}" matches ${hits.length} backups (${hits.slice(0, 5).map((b) => `${b.id} ${b.filename}`).join(', ')}${hits.length > 5 ? ', …' : ''}); give more of the name or the id`);
  }
  throw new CliError('not_found', `no such backup or file: ${arg}; see keeper backup list`, {}, 2);
}

/** The passphrase from --passphrase-file (first line; never from argv). */
export function passphraseFrom(values: ParsedArgs['values']): { passphrase?: string } {
  const f = values['passphrase-file'];
  if (f === undefined) return {};
  if (typeof f !== 'string' || !f) throw usageError('--passphrase-file needs a file');
  let text: string;
  try {
    text = readFileSync(f, 'utf8');
  } catch (e) {
    throw usageError(`cannot read --passphrase-file ${f}: ${errorMessage(e)}`);
  }
  const p = text.split(/\r?\n/)[0];
  if (!p) throw usageError(`--passphrase-file ${f} is empty`);
  return { passphrase: p };
}

const size = (n: number) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`);
const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');

/** The preview as the restore modal (RestoreModal.vue) shows it. */
export function renderPreview(p: RestorePreview, out: (line: string) => void): void {
  const b = p.backup;
  out('Restore from backup');
  out('');
  out('Backup information:');
  out(`  Date:     ${localTime(b.date)}`);
  out(`  Version:  ${b.version ?? '?'} (commit: ${b.commit?.slice(0, 7) ?? '?'})`);
  out(`  Size:     ${size(b.size_bytes)}${b.encrypted ? ' (encrypted)' : ''}`);
  out(`  Type:     ${b.type}${b.id !== null ? `  (id ${b.id}, ${b.filename})` : `  (${b.filename})`}`);
  out('');
  out('Current installation:');
  out(`  Version:  ${p.current.version ?? '?'} (commit: ${p.current.commit?.slice(0, 7) ?? '?'})`);
  out(`  Last updated: ${p.current.last_update ? localTime(p.current.last_update) : 'unknown'}`);
  out('');
  out('CHANGES THAT WILL BE LOST:');
  if (p.database) {
    const d = p.database;
    out('  Database:');
    out(`    ${d.servers_added ?? '?'} new server(s), ${d.archives_added ?? '?'} new archive(s), ${d.users_added ?? '?'} new user(s) since the backup`);
    if (d.unknown.length) out(`    unknown for this backup: ${list(d.unknown)} ("?")`);
    for (const [t, c] of Object.entries(d.tables)) if (c.now !== c.backup) out(`    table ${t}: ${c.now ?? '-'} rows now, ${c.backup ?? '-'} in the backup`);
    if (d.tables_dropped.length) out(`    tables dropped: ${list(d.tables_dropped)}`);
  }
  if (p.settings) out(`  Settings: modified ${list(p.settings.modified)}; added ${list(p.settings.added)}; removed ${list(p.settings.removed)}`);
  const c = p.config;
  out('  Configuration:');
  out(`    .env keys changed: ${list(c.env_changed)}`);
  for (const k of ['sudoers', 'systemd', 'etc'] as const) {
    const d = c[k];
    out(`    ${k}: added ${list(d.added)}; removed ${list(d.removed)}; changed ${list(d.changed)}`);
  }
  out(`    SSH keys: added ${list(c.ssh.added)}; removed ${list(c.ssh.removed)}; changed ${list(c.ssh.changed)}`);
  if (c.ssh_borg) out(`    phpborg-borg SSH keys: added ${list(c.ssh_borg.added)}; removed ${list(c.ssh_borg.removed)}; changed ${list(c.ssh_borg.changed)}`);
  else out('    phpborg-borg SSH keys: not in this backup, kept as they are');
  if (c.not_in_backup.length) out(`    not in the backup, DELETED by the restore (the safety backup keeps a copy): ${list(c.not_in_backup)}`);
  if (p.code.local_edits?.length) out(`  Uncommitted edits to tracked files, replaced by the backup's: ${list(p.code.local_edits)}`);
  const v = p.version;
  if (v.downgrade) out(`  Version downgrade: ${v.from} → ${v.to} (${v.commits_behind} commit(s) behind)`);
  else out(`  Version: ${v.from ?? '?'} → ${v.to ?? '?'}${v.commits_ahead ? ` (${v.commits_ahead} commit(s) ahead)` : ''}`);
  out('');
  if (p.safety_backup) out(`A backup of the current installation will be created first: ${p.safety_backup.description}`);
  else out('NO safety backup will be taken.');
  out(`Free space: ${size(p.free_space.needed)} needed, ${size(p.free_space.available)} available${p.free_space.ok ? '' : '  — NOT ENOUGH'}`);
  for (const w of p.warnings) out(`warning: ${w}`);
}

async function confirm(ctx: CliContext): Promise<void> {
  if (!process.stdin.isTTY) throw usageError('not a terminal: add --yes to restore without the interactive confirmation');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question("Type 'YES' to restore (anything else cancels): ");
    if (answer.trim() !== 'YES') throw new CliError('cancelled', 'restore cancelled; nothing was changed');
  } finally {
    rl.close();
  }
  ctx.info('');
}

export const restoreCommand: CliTopCommand = {
  usage:
    'keeper restore <id|file> [--preview] [--yes] [--passphrase-file F] [--force] [--skip-safety-backup] [--accept-db-change] [--json]\n' +
    '       keeper restore --fresh FILE [--passphrase-file F] [--accept-db-change]\n' +
    '       keeper restore --fresh --from TARGET [NAME] [--passphrase-file F] [--accept-db-change]\n' +
    '  --preview             show what would be lost, change nothing\n' +
    '  --yes                 do not ask for YES (needed when not on a terminal)\n' +
    '  --passphrase-file F   passphrase of an encrypted archive (first line of F); default: the stored one\n' +
    '  --force               go on when phpBorg jobs still run after the drain timeout (never kills them)\n' +
    '  --skip-safety-backup  no safety backup first (needs --force): a failure cannot be rolled back\n' +
    "  --accept-db-change    the archive's .env may name another DB_NAME / DB_USER than the live one\n" +
    '  --fresh               bare metal: restore FILE onto a machine with no phpBorg (creates the database and its user)\n' +
    '  --from TARGET         with --fresh: first pull NAME (default: the newest complete archive) from that off-site target',
  options: {
    preview: { type: 'boolean' },
    yes: { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    force: { type: 'boolean' },
    'skip-safety-backup': { type: 'boolean' },
    'accept-db-change': { type: 'boolean' },
    fresh: { type: 'boolean' },
    from: { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(ctx, { values, positionals }) {
    if (values.from !== undefined && !values.fresh) throw usageError('--from needs --fresh (a restore onto a new machine)');
    if (values.fresh) return bareMetal(ctx, positionals[0], values);
    const ref = { ...archiveRef(positionals[0], ctx), ...passphraseFrom(values) };
    if (values['skip-safety-backup'] && !values.force) throw usageError('--skip-safety-backup needs --force');
    if (values.preview || !values.yes) {
      const job = await runTaskFromCli(ctx, 'backup.restore_preview', ref);
      const preview = job.result as RestorePreview;
      if (values.preview) return { preview };
      renderPreview(preview, (l) => ctx.info(l));
      if (!preview.free_space.ok) throw new CliError('insufficient_space', 'not enough free space for the restore; nothing was changed', { free_space: preview.free_space });
      await confirm(ctx);
    }
    const job = await runTaskFromCli(ctx, 'backup.restore', {
      ...ref,
      force: !!values.force,
      skip_safety_backup: !!values['skip-safety-backup'],
      accept_db_change: !!values['accept-db-change'],
    });
    return { job_id: job.id, ...(job.result as RestoreResult) };
  },
  render(r, ctx) {
    const x = r as { preview?: RestorePreview } & Partial<RestoreResult>;
    if (x.preview) return renderPreview(x.preview, (l) => ctx.print(l));
    ctx.print(x.message ?? 'restored');
    if (x.safety_backup) ctx.print(`safety backup: ${x.safety_backup.filename} (id ${x.safety_backup.id})`);
  },
};

/** keeper restore --fresh FILE: the bare-metal restore (task setup.restore, functions/setup/bare-metal.ts). */
async function bareMetal(ctx: CliContext, arg: string | undefined, values: ParsedArgs['values']): Promise<unknown> {
  if (typeof values.from === 'string') {
    // the server died with its disk: the archive comes from the off-site target first
    const pass = passphraseFrom(values);
    const pulled = await pullFromTarget(ctx, targetArg(ctx.config(), values.from), arg ?? null);
    const job = await runTaskFromCli(ctx, 'setup.restore', { file: pulled.file, origin: 'fresh', ...pass });
    return { job_id: job.id, pulled, ...(job.result as RestoreResult) };
  }
  const ref = archiveRef(arg);
  if (!('file' in ref)) throw usageError('--fresh needs an archive FILE (there is no catalog yet on a fresh machine)');
  const job = await runTaskFromCli(ctx, 'setup.restore', { file: ref.file, origin: 'fresh', accept_db_change: !!values['accept-db-change'], ...passphraseFrom(values) });
  return { job_id: job.id, ...(job.result as RestoreResult) };
}

export const verifyCommand: CliCommand = {
  name: 'verify',
  summary: 'check an archive end to end (hash, HMAC, gzip, tar, layout, manifest, metadata); changes nothing',
  usage: 'keeper backup verify <id|file> [--passphrase-file F] [--json]',
  options: { 'passphrase-file': { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(ctx, { values, positionals }) {
    const job = await runTaskFromCli(ctx, 'backup.verify', { ...archiveRef(positionals[0], ctx), ...passphraseFrom(values) });
    return job.result as VerifyTaskResult;
  },
  render(r, ctx) {
    const x = r as VerifyTaskResult;
    for (const c of x.checks) ctx.print(`${c.ok ? 'ok   ' : 'ERROR'}  ${c.name}${c.error ? `: ${c.error}` : ''}`);
    ctx.print(`${x.file}: all checks passed`);
  },
};
