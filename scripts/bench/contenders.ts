// The contenders, each one measured sample: keeper through its real CLI path (keeper → job → helper →
// maintenance window → archive), the original design's sequence, the best shell stream, the shell
// restore, and keeper's preview and verify in-process.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, statSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { safeEnv } from '../../runtime/exec.ts';
import type { PhpborgEnv } from '../../runtime/install.ts';
import { DUMP_ARGS } from '../../runtime/mariadb.ts';
import { ledgerPath, openLedger } from '../../state/ledger.ts';
import { getJob, listEvents } from '../../state/jobs.ts';
import { locateArchive } from '../../functions/restore/locate.ts';
import { ensureSeeded, updateSettings } from '../../state/settings.ts';
import { readSettingsTable } from '../../runtime/mariadb.ts';
import { verifyArchive } from '../../archive/index.ts';
import { buildPreview } from '../../functions/restore/preview.ts';
import { childCpuMs, sampleTree, timed, type RssReport } from './measure.ts';
import { runCmd, runPipeline, type Cmd } from './pipeline.ts';
import type { SftpTarget } from '../../runtime/config.ts';
import { sshOptions } from '../../runtime/offsite.ts';
import { getBackup } from '../../state/catalog.ts';
import { copyBackup } from '../../functions/offsite/copy.ts';
import type { Sshd } from '../sandbox-kit/sshd.ts';

export interface BenchCtx {
  config: KeeperConfig;
  configPath: string;
  env: PhpborgEnv;
  /** 0700 scratch dir: shell outputs, the 0600 defaults and passphrase files */
  work: string;
  defaultsFile: string;
  passFile: string;
  passphrase: string;
  keeperBin: string;
}

export interface Sample {
  wall_ms: number;
  cpu_ms: number;
  /** named sub-steps (dump, tar, openssl, …), ms */
  steps?: Record<string, number>;
  rss?: RssReport;
  maintenance_window_ms?: number;
  /** the job's own duration (helper start to result), ms */
  job_ms?: number;
  dump_ms?: number;
  size_bytes?: number;
  extra?: Record<string, unknown>;
}

// ---- keeper ------------------------------------------------------------------------------------

export async function setEncryption(c: BenchCtx, on: boolean): Promise<void> {
  const l = openLedger(ledgerPath(c.config.paths.state));
  try {
    await ensureSeeded(l, async () => readSettingsTable(c.env));
    updateSettings(l, c.config.paths.storage, on ? { backup_encryption_passphrase: c.passphrase, backup_encryption_enabled: true } : { backup_encryption_enabled: false });
    // a run makes two manual backups before it restores the encrypted one: 5 per type keeps it, and bounds the disk used
    updateSettings(l, c.config.paths.storage, { backup_retention_count: 5 });
  } finally {
    l.close();
  }
}

interface CliRun {
  wall_ms: number;
  cpu_ms: number;
  rss: RssReport;
  json: Record<string, unknown>;
  jobId: string | null;
}

/** keeper --config C --json ARGS…, its tree sampled for RSS. Throws when it fails. */
export async function keeperCli(c: BenchCtx, args: string[]): Promise<CliRun> {
  const c0 = childCpuMs();
  const t0 = performance.now();
  const child = spawn(c.keeperBin, ['--config', c.configPath, '--json', ...args], { env: safeEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = sampleTree(child.pid!);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (x) => resolve(x));
  });
  const wall_ms = performance.now() - t0;
  const rss = sampler.stop();
  const cpu_ms = childCpuMs() - c0;
  const last = out.trim().split('\n').pop() ?? '';
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(last) as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  if (code !== 0 || 'error' in json) {
    throw new Error(`keeper ${args.join(' ')} failed (exit ${code}): ${last || err.trim().split('\n').slice(-5).join(' | ')}`);
  }
  const jobId = /^job (\S+): /m.exec(err)?.[1] ?? null;
  return { wall_ms, cpu_ms, rss, json, jobId };
}

/** The job's duration, keeper's own dump time, and each step's duration from its events' timestamps. */
function jobTimes(c: BenchCtx, jobId: string | null): { job_ms?: number; dump_ms?: number; steps?: Record<string, number> } {
  if (!jobId) return {};
  const l = openLedger(ledgerPath(c.config.paths.state), { readonly: true });
  try {
    const j = getJob(l, jobId);
    let dump_ms: number | undefined;
    const steps: Record<string, number> = {};
    let cur: { step: string; at: number } | null = j?.started_at ? { step: 'helper_start', at: Date.parse(j.started_at) } : null;
    const close = (at: number) => {
      if (cur) steps[cur.step] = (steps[cur.step] ?? 0) + (at - cur.at);
    };
    for (const e of listEvents(l, jobId)) {
      if (e.data.type === 'progress' && e.data.step.endsWith('.dump') && typeof e.data.params?.ms === 'number') dump_ms = e.data.params.ms;
      if (e.data.type !== 'progress' || e.data.step === cur?.step) continue;
      const at = Date.parse(e.at);
      close(at);
      cur = { step: e.data.step, at };
    }
    if (j?.finished_at) close(Date.parse(j.finished_at));
    const job_ms = j?.started_at && j.finished_at ? Date.parse(j.finished_at) - Date.parse(j.started_at) : undefined;
    return { job_ms, dump_ms, steps };
  } finally {
    l.close();
  }
}

export async function keeperBackup(c: BenchCtx, encrypted: boolean): Promise<Sample & { id: number; file: string }> {
  await setEncryption(c, encrypted);
  const r = await keeperCli(c, ['backup', 'create', '--notes', `bench ${encrypted ? 'encrypted' : 'plain'}`]);
  const res = r.json as { id: number; file: string; size_bytes: number; maintenance_window_ms: number; duration_ms: number; encrypted: boolean };
  if (res.encrypted !== encrypted) throw new Error(`keeper made a ${res.encrypted ? 'n encrypted' : ' plain'} backup; expected the other`);
  const t = jobTimes(c, r.jobId);
  return {
    wall_ms: r.wall_ms,
    cpu_ms: r.cpu_ms,
    rss: r.rss,
    maintenance_window_ms: res.maintenance_window_ms,
    job_ms: t.job_ms ?? res.duration_ms,
    dump_ms: t.dump_ms,
    steps: t.steps,
    size_bytes: res.size_bytes,
    id: res.id,
    file: res.file,
    extra: { task_duration_ms: res.duration_ms },
  };
}

export async function keeperRestore(c: BenchCtx, id: number, safety: boolean): Promise<Sample> {
  const args = ['restore', String(id), '--yes', '--force', ...(safety ? [] : ['--skip-safety-backup'])];
  const r = await keeperCli(c, args);
  const res = r.json as { outcome: string; steps: { step: string; ms: number }[] };
  if (res.outcome !== 'succeeded') throw new Error(`keeper restore ended ${res.outcome}`);
  const t = jobTimes(c, r.jobId);
  return {
    wall_ms: r.wall_ms,
    cpu_ms: r.cpu_ms,
    rss: r.rss,
    job_ms: t.job_ms,
    steps: Object.fromEntries(res.steps.map((s) => [s.step, s.ms])),
  };
}

export async function keeperPreviewCli(c: BenchCtx, id: number): Promise<Sample> {
  const r = await keeperCli(c, ['restore', String(id), '--preview']);
  const t = jobTimes(c, r.jobId);
  return { wall_ms: r.wall_ms, cpu_ms: r.cpu_ms, rss: r.rss, job_ms: t.job_ms };
}

/** The preview task's work (locate + buildPreview) in this process: its own latency, without process start-ups. */
export async function keeperPreview(c: BenchCtx, id: number): Promise<Sample> {
  const l = openLedger(ledgerPath(c.config.paths.state), { readonly: true });
  try {
    const t = await timed(
      async () => {
        const loc = await locateArchive(c.config, l, { backup_id: id });
        return buildPreview({ config: c.config, ledger: l, file: loc.file, passphrase: loc.passphrase, backup: loc.backup, expected: loc.expected });
      },
      { own: true },
    );
    if (!t.value.backup.encrypted) throw new Error('the preview was not of an encrypted archive');
    return { wall_ms: t.wall_ms, cpu_ms: t.cpu_ms };
  } finally {
    l.close();
  }
}

export async function keeperVerify(c: BenchCtx, file: string): Promise<Sample> {
  const size = statSync(file).size;
  const t = await timed(() => verifyArchive(file, { passphrase: c.passphrase }), { own: true });
  if (!t.value.ok) throw new Error(`verify failed: ${t.value.code}`);
  return { wall_ms: t.wall_ms, cpu_ms: t.cpu_ms, size_bytes: size, extra: { mib_s: size / 1048576 / (t.wall_ms / 1000) } };
}

// ---- shell contenders --------------------------------------------------------------------------

const dumpCmd = (c: BenchCtx): Cmd => ['mariadb-dump', `--defaults-extra-file=${c.defaultsFile}`, ...DUMP_ARGS, c.env.DB_NAME];
const opensslEnc = (c: BenchCtx, io: string[] = []): Cmd => ['openssl', 'enc', '-aes-256-cbc', '-salt', '-pbkdf2', '-iter', '100000', '-md', 'sha256', ...io, '-pass', `file:${c.passFile}`];

/** What keeper archives, as tar operands: the dump, code (minus node_modules and caches), keys, config. */
function tarInputs(c: BenchCtx, dumpDir: string): string[] {
  const p = c.config.paths;
  const pre = c.config.file_prefix;
  const pick = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => n.startsWith(pre)).sort() : []);
  const code = basename(p.code);
  const ex = c.config.exclude_dirs.flatMap((d) => (d === 'node_modules' ? ['--exclude=node_modules'] : [`--exclude=${code}/${d}`]));
  const args = [...ex, '-C', dumpDir, 'database.sql', '-C', dirname(p.code), code, '-C', dirname(p.ssh), basename(p.ssh)];
  const sud = pick(p.sudoers);
  if (sud.length) args.push('-C', p.sudoers, ...sud);
  const units = pick(p.systemd);
  if (units.length) args.push('-C', p.systemd, ...units);
  if (existsSync(p.etc)) args.push('-C', dirname(p.etc), basename(p.etc));
  return args;
}

async function step<T>(steps: Record<string, number>, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    steps[name] = Math.round(performance.now() - t0);
  }
}

/** The shell sequence keeper replaces: dump; tar -czf to a temp file; openssl enc to a second file; delete; rename; sha256sum. */
export async function originalBackup(c: BenchCtx): Promise<Sample> {
  const dir = join(c.work, 'original');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  const steps: Record<string, number> = {};
  const tmp = join(dir, 'backup.tar.gz');
  const enc = join(dir, 'backup.tar.gz.enc');
  const t = await timed(async () => {
    await step(steps, 'dump', () => runCmd(dumpCmd(c), { stdoutFile: join(dir, 'database.sql') }));
    await step(steps, 'tar_czf', () => runCmd(['tar', '-czf', tmp, ...tarInputs(c, dir)]));
    await step(steps, 'openssl', () => runCmd(opensslEnc(c, ['-in', tmp, '-out', enc])));
    await step(steps, 'rm_rename', async () => {
      rmSync(tmp);
      renameSync(enc, tmp);
    });
    await step(steps, 'sha256sum', () => runCmd(['sha256sum', tmp]));
  });
  const size = statSync(tmp).size;
  rmSync(dir, { recursive: true, force: true });
  return { wall_ms: t.wall_ms, cpu_ms: t.cpu_ms, steps, dump_ms: steps.dump, size_bytes: size };
}

/** dump to a file, then tar -cf - … | pigz -p 2 [| openssl enc …] | tee FILE | sha256sum */
export async function streamBackup(c: BenchCtx, encrypted: boolean): Promise<Sample> {
  const dir = join(c.work, 'stream');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  const steps: Record<string, number> = {};
  const out = join(dir, 'backup.tar.gz');
  // every process of the pipeline (and mariadbd, a child of this process too), for the CPU profile
  const sampler = sampleTree(process.pid, 50, { skipRoot: true });
  const t = await timed(async () => {
    await step(steps, 'dump', () => runCmd(dumpCmd(c), { stdoutFile: join(dir, 'database.sql') }));
    const stages: Cmd[] = [['tar', '-cf', '-', ...tarInputs(c, dir)], ['pigz', '-p', '2']];
    if (encrypted) stages.push(opensslEnc(c));
    stages.push(['tee', out], ['sha256sum']);
    const sum = await step(steps, 'stream', () => runPipeline(stages));
    if (!/^[0-9a-f]{64}\b/.test(sum)) throw new Error(`sha256sum printed ${JSON.stringify(sum)}`);
  });
  const rss = sampler.stop();
  const size = statSync(out).size;
  rmSync(dir, { recursive: true, force: true });
  return { wall_ms: t.wall_ms, cpu_ms: t.cpu_ms, steps, dump_ms: steps.dump, size_bytes: size, rss };
}

/** openssl enc -d to a file; tar -xzf; mariadb < database.sql */
export async function shellRestore(c: BenchCtx, archive: string): Promise<Sample> {
  const dir = join(c.work, 'restore');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'x'), { recursive: true, mode: 0o700 });
  const steps: Record<string, number> = {};
  const dec = join(dir, 'backup.tar.gz');
  const sampler = sampleTree(process.pid, 50, { skipRoot: true });
  const t = await timed(async () => {
    await step(steps, 'openssl_d', () => runCmd([...opensslEnc(c, ['-d', '-in', archive, '-out', dec])] as Cmd));
    await step(steps, 'tar_xzf', () => runCmd(['tar', '-xzf', dec, '-C', join(dir, 'x')]));
    const root = readdirSync(join(dir, 'x'))[0];
    await step(steps, 'mariadb_import', () =>
      runCmd(['mariadb', `--defaults-extra-file=${c.defaultsFile}`, c.env.DB_NAME], { stdinFile: join(dir, 'x', root, 'database.sql') }),
    );
  });
  const rss = sampler.stop();
  rmSync(dir, { recursive: true, force: true });
  return { wall_ms: t.wall_ms, cpu_ms: t.cpu_ms, steps, rss };
}

/** Reads the code tree once so that no contender pays for a cold page cache. */
export async function warmCache(c: BenchCtx): Promise<void> {
  const child = spawn('tar', ['-cf', '-', '-C', dirname(c.config.paths.code), basename(c.config.paths.code)], { env: safeEnv(), stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.resume();
  await new Promise((r) => child.on('close', r));
}

// ---- off-site copy ---------------------------------------------------------------------------

/** A local sftp target: the bench's private sshd (scripts/sandbox-kit/sshd.ts). */
export function benchSftpTarget(s: Sshd, dir: string): SftpTarget {
  return { name: 'bench', kind: 'sftp', host: '127.0.0.1', port: s.port, user: s.user, path: dir, key_file: s.key, known_hosts: s.knownHosts, keep: null, enabled: true, bwlimit_kbps: null };
}

/** keeper's off-site copy of one backup (archive + sidecars, temp names, rename, remote SHA-256). */
export async function keeperOffsite(c: BenchCtx, target: SftpTarget, backupId: number): Promise<Sample> {
  const l = openLedger(ledgerPath(c.config.paths.state));
  try {
    const row = getBackup(l, backupId);
    if (!row) throw new Error(`no backup ${backupId}`);
    const c0 = childCpuMs();
    const t0 = performance.now();
    const r = await copyBackup({ config: c.config, ledger: l, actor: { id: null, name: 'bench' }, tries: 1 }, row, target);
    const wall = performance.now() - t0;
    if (r.status !== 'verified') throw new Error(`off-site copy failed: ${r.error}`);
    return { wall_ms: wall, cpu_ms: childCpuMs() - c0, size_bytes: row.size_bytes, extra: { mib_s: row.size_bytes / 1048576 / (wall / 1000), method: r.method } };
  } finally {
    l.close();
  }
}

/** scp of the same archive to the same server, with the same ssh options (no check afterwards). */
export async function scpCopy(target: SftpTarget, file: string): Promise<Sample> {
  const size = statSync(file).size;
  const c0 = childCpuMs();
  const t0 = performance.now();
  await runCmd(['scp', '-q', '-P', String(target.port), ...sshOptions(target), file, `${target.user}@${target.host}:${target.path}/scp-${basename(file)}`]);
  const wall = performance.now() - t0;
  return { wall_ms: wall, cpu_ms: childCpuMs() - c0, size_bytes: size, extra: { mib_s: size / 1048576 / (wall / 1000) } };
}
