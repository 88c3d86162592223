// Copying backups off-site: one backup to one target (archive + both sidecars, each through a
// temporary name, then checked: size and SHA-256 of what arrived), the pass every backup ends with
// (the new archive, then whatever is due again, then the target's retention), and the per-target
// retention that only ever deletes what this ledger itself copied there.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { KeeperConfig, OffsiteTarget } from '../../runtime/config.ts';
import { describeTarget, OffsiteError, remoteHashes, sha256File, transportFor, type Transport } from '../../runtime/offsite.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import type { Actor } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import { listBackups, type BackupRow } from '../../state/catalog.ts';
import { audit } from '../../state/audit.ts';
import {
  due,
  getCopy,
  markCopied,
  markFailed,
  markRemoved,
  markVerified,
  ownRemoteFiles,
  startCopy,
  type OffsiteStatus,
} from '../../state/offsite.ts';
import { parseArchiveFileName, sidecarPaths } from '../../archive/format.ts';

export interface CopyOutcome {
  target: string;
  backup_id: number;
  filename: string;
  status: OffsiteStatus;
  error?: string;
  error_code?: string;
  method?: string;
  bytes?: number;
  ms?: number;
}

export interface OffsiteEnv {
  config: KeeperConfig;
  ledger: Ledger;
  actor: Actor;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  signal?: AbortSignal;
  now?: () => Date;
  /** attempts within this call for an error that may pass (unreachable, write failed); default 2 */
  tries?: number;
  /** pause between those attempts; default 2 s */
  pauseMs?: number;
}

export const enabledTargets = (c: KeeperConfig): OffsiteTarget[] => c.offsite.filter((t) => t.enabled);

export function findTarget(c: KeeperConfig, name: string): OffsiteTarget | null {
  return c.offsite.find((t) => t.name === name) ?? null;
}

/** The three files of a backup, in the order they are sent: the .json last, so a listed archive is whole. */
function filesOf(row: BackupRow): { local: string; name: string }[] {
  const side = sidecarPaths(row.filepath);
  return [
    { local: row.filepath, name: row.filename },
    { local: row.sha256_path ?? side.sha256, name: `${row.filename}.sha256` },
    { local: row.json_path ?? side.json, name: `${row.filename}.json` },
  ];
}

const transient = (e: unknown) => e instanceof OffsiteError && (e.code === 'unreachable' || e.code === 'write_failed' || e.code === 'failed');

/** Copies one backup to one target and checks what arrived; records every state in the ledger. */
export async function copyBackup(env: OffsiteEnv, row: BackupRow, target: OffsiteTarget): Promise<CopyOutcome> {
  const now = env.now ?? (() => new Date());
  const base = { target: target.name, backup_id: row.id, filename: row.filename };
  startCopy(env.ledger, { backup_id: row.id, target: target.name, filename: row.filename, sha256: row.hash_sha256, size_bytes: row.size_bytes }, now());
  const t0 = performance.now();
  const tries = Math.max(1, env.tries ?? 2);
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    if (i > 0) {
      env.log?.('warn', `off-site ${target.name}: ${errorMessage(last)}; trying again`);
      await new Promise((r) => setTimeout(r, env.pauseMs ?? 2000));
    }
    try {
      const files = filesOf(row);
      // what should arrive: size and SHA-256 of each local file (the archive's hash is the catalog's)
      const expect = await Promise.all(
        files.map(async (f) => ({
          ...f,
          size: (await stat(f.local)).size,
          sha256: f.name === row.filename && row.hash_sha256 ? row.hash_sha256 : await sha256File(f.local),
        })),
      );
      if (row.hash_sha256 && expect[0].size !== row.size_bytes) {
        throw new OffsiteError('failed', `the local archive ${row.filename} is ${expect[0].size} bytes, the catalog says ${row.size_bytes}: not copied`);
      }
      const tr = transportFor(target);
      await tr.putAll(expect, env.signal);
      markCopied(env.ledger, row.id, target.name, now());
      const method = await verifyArrival(tr, expect, env.config.paths.state, env.signal);
      markVerified(env.ledger, row.id, target.name, method, now());
      const out: CopyOutcome = { ...base, status: 'verified', method, bytes: expect.reduce((a, f) => a + f.size, 0), ms: Math.round(performance.now() - t0) };
      audit(env.ledger, { actor: env.actor, action: 'backup.offsite', target: String(row.id), outcome: 'succeeded', details: { target: target.name, filename: row.filename, method } }, now());
      return out;
    } catch (e) {
      last = e;
      if (!transient(e) || env.signal?.aborted) break;
    }
  }
  const code = last instanceof OffsiteError ? last.code : 'failed';
  const message = errorMessage(last);
  const r = markFailed(env.ledger, row.id, target.name, code, message, now());
  audit(env.ledger, {
    actor: env.actor,
    action: 'backup.offsite',
    target: String(row.id),
    outcome: 'failed',
    details: { target: target.name, filename: row.filename, code, error: message, attempts: r.attempts, next_attempt_at: r.next_attempt_at },
  }, now());
  env.log?.('warn', `off-site copy of ${row.filename} to ${target.name} failed: ${message}`);
  return { ...base, status: 'failed', error: message, error_code: code };
}

/** Size (from the listing) and SHA-256 (remote, else read back) of every file that should have arrived. */
async function verifyArrival(tr: Transport, expect: { name: string; size: number; sha256: string }[], stateDir: string, signal?: AbortSignal): Promise<string> {
  const quick = await tr.remoteCheck(expect.map((f) => f.name));
  if (quick) {
    for (const f of expect) {
      const got = quick.get(f.name)!;
      if (got.size !== f.size) throw new OffsiteError('failed', `${f.name} arrived with ${got.size} bytes, ${f.size} were sent`);
      if (got.sha256 !== f.sha256) throw new OffsiteError('failed', `${f.name} arrived with SHA-256 ${got.sha256}, ${f.sha256} was sent`);
    }
    return 'remote';
  }
  const listing = new Map((await tr.list()).map((e) => [e.name, e.size]));
  for (const f of expect) {
    const size = listing.get(f.name);
    if (size === undefined) throw new OffsiteError('failed', `${f.name} is not on the target after the copy`);
    if (size !== f.size) throw new OffsiteError('failed', `${f.name} arrived with ${size} bytes, ${f.size} were sent`);
  }
  const { hashes, method } = await remoteHashes(tr, expect.map((f) => f.name), stateDir, signal);
  for (const f of expect) {
    if (hashes.get(f.name) !== f.sha256) throw new OffsiteError('failed', `${f.name} arrived with SHA-256 ${hashes.get(f.name) ?? '?'}, ${f.sha256} was sent`);
  }
  return method;
}

export interface TargetPass {
  target: string;
  where: string;
  copies: CopyOutcome[];
  retention: { keep: number; deleted: string[]; errors: string[] };
}

/**
 * What every backup ends with, per enabled target: copy the backups that retention keeps there and
 * that are not verified yet (the new one first; earlier failures once their back-off is over), then
 * apply the target's retention. Never throws: failures are recorded, returned and logged.
 */
export async function offsitePass(env: OffsiteEnv, opts: { first?: number; keepDefault: number }): Promise<TargetPass[]> {
  const out: TargetPass[] = [];
  const now = env.now ?? (() => new Date());
  const rows = listBackups(env.ledger, { status: 'succeeded' });
  for (const target of enabledTargets(env.config)) {
    const keep = target.keep ?? opts.keepDefault;
    const kept = keptPerType(rows, keep);
    const copies: CopyOutcome[] = [];
    const ordered = [...kept].sort((a, b) => (a.id === opts.first ? -1 : b.id === opts.first ? 1 : 0));
    let reachable = true;
    for (const row of ordered) {
      if (!reachable) break;
      const isFirst = row.id === opts.first;
      if (!isFirst && !due(getCopy(env.ledger, row.id, target.name), now())) continue;
      const c = await copyBackup(env, row, target);
      copies.push(c);
      // an unreachable target fails every copy the same way: say it once
      if (c.status === 'failed' && (c.error_code === 'unreachable' || c.error_code === 'host_key_refused' || c.error_code === 'auth_failed')) reachable = false;
    }
    const retention = reachable ? await offsiteRetention(env, target, keep) : { keep, deleted: [], errors: [] };
    out.push({ target: target.name, where: describeTarget(target), copies, retention });
  }
  return out;
}

/** The newest `keep` of each type, newest first (rows come newest first). */
function keptPerType(rows: BackupRow[], keep: number): BackupRow[] {
  const n = new Map<string, number>();
  return rows.filter((r) => {
    const c = (n.get(r.backup_type) ?? 0) + 1;
    n.set(r.backup_type, c);
    return c <= keep;
  });
}

/**
 * Keeps the newest `keep` archives of each type on the target. A remote archive is deleted only when
 * it is provably a keeper archive of this install: a keeper name, its .json sidecar beside it, and a
 * row of this ledger saying it copied exactly that file (same SHA-256) there. Anything else stays.
 */
export async function offsiteRetention(env: OffsiteEnv, target: OffsiteTarget, keep: number): Promise<{ keep: number; deleted: string[]; errors: string[] }> {
  const deleted: string[] = [];
  const errors: string[] = [];
  try {
    const tr = transportFor(target);
    const listing = await tr.list();
    const names = new Set(listing.map((e) => e.name));
    const own = ownRemoteFiles(env.ledger, target.name);
    const archives = listing
      .map((e) => ({ name: e.name, parsed: parseArchiveFileName(e.name) }))
      .filter((a): a is { name: string; parsed: NonNullable<ReturnType<typeof parseArchiveFileName>> } => a.parsed !== null)
      .sort((a, b) => b.parsed.date.getTime() - a.parsed.date.getTime());
    const count = new Map<string, number>();
    const candidates: string[] = [];
    for (const a of archives) {
      const c = (count.get(a.parsed.type) ?? 0) + 1;
      count.set(a.parsed.type, c);
      if (c > keep && own.has(a.name) && names.has(`${a.name}.json`)) candidates.push(a.name);
    }
    if (!candidates.length) return { keep, deleted, errors };
    const { hashes } = await remoteHashes(tr, candidates, env.config.paths.state, env.signal);
    for (const name of candidates) {
      if (hashes.get(name) !== own.get(name)) {
        errors.push(`${name}: its SHA-256 is not the one this install copied there; left in place`);
        continue;
      }
      try {
        await tr.remove([name, `${name}.sha256`, `${name}.json`].filter((n) => names.has(n)));
        markRemoved(env.ledger, target.name, name);
        deleted.push(name);
      } catch (e) {
        errors.push(`${name}: ${errorMessage(e)}`);
      }
    }
    if (deleted.length) {
      audit(env.ledger, { actor: env.actor, action: 'backup.offsite_retention', target: target.name, outcome: errors.length ? 'partial' : 'succeeded', details: { keep, deleted, errors } });
    }
  } catch (e) {
    errors.push(errorMessage(e));
  }
  for (const e of errors) env.log?.('warn', `off-site retention on ${target.name}: ${e}`);
  return { keep, deleted, errors };
}

/** Writes a small file, reads it back, compares, deletes it: what "test connection" does. */
export async function testTarget(target: OffsiteTarget, dir: string): Promise<{ target: string; where: string; ok: true; ms: number; method: string }> {
  const t0 = performance.now();
  const tr = transportFor(target);
  // not a keeper archive name: retention and listings never take it for one
  const name = `keeper-connection-test-${process.pid}-${Date.now()}`;
  const local = `${dir}/probe`;
  const back = `${dir}/probe.back`;
  const body = `phpborg-keeper connection test ${new Date().toISOString()}\n`;
  await writeFile(local, body, { mode: 0o600 });
  await tr.put(local, name);
  try {
    await tr.get(name, back);
    const got = await readFile(back, 'utf8');
    if (got !== body) throw new OffsiteError('failed', `the test file read back differs from what was written (${basename(back)})`);
  } finally {
    await tr.remove([name]).catch(() => {});
  }
  return { target: target.name, where: describeTarget(target), ok: true, ms: Math.round(performance.now() - t0), method: 'write, read back, delete' };
}
