// npm run bench -- [--size MiB] [--runs N] [--json FILE] [--dir DIR]
// keeper against the shell pipelines it replaces, on the same sandbox in the same run, the contenders
// alternating from run to run so that the order favours neither. Summary table on stdout, everything with --json.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { hasCommand, run } from '../runtime/exec.ts';
import { loadConfig } from '../runtime/config.ts';
import { readEnv } from '../runtime/install.ts';
import { clientOptions } from '../runtime/mariadb.ts';
import { PROJECT_ROOT } from './cli/framework.ts';
import { benchSandbox } from './bench/shape.ts';
import { downSandbox } from './sandbox-kit/index.ts';
import { startSshd, type Sshd } from './sandbox-kit/sshd.ts';
import { spread, type Spread } from './bench/measure.ts';
import { judgeTargets, targetLine } from './bench/targets.ts';
import { cliStart } from './bench/cli-start.ts';
import { responsiveness } from './bench/responsiveness.ts';
import { verifyCli } from './bench/verify-cli.ts';
import {
  benchSftpTarget, keeperBackup, keeperOffsite, keeperPreview, keeperPreviewCli, keeperRestore, keeperVerify, originalBackup, scpCopy, setEncryption, shellRestore, streamBackup, warmCache,
  type BenchCtx, type Sample,
} from './bench/contenders.ts';

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

const CONTENDERS = {
  cli_start: 'CLI start: keeper --json backup list, median of 20 runs',
  responsiveness: 'runner under load: a backup through the API, 50 SSE clients on its events, /api/health and the list polled every 50 ms',
  keeper_enc: 'keeper backup, encrypted (CLI → helper)',
  keeper_plain: 'keeper backup, plain (CLI → helper)',
  original_enc: 'original design: dump; tar -czf; openssl enc; rm; mv; sha256sum',
  stream_enc: 'shell stream: dump; tar | pigz -p 2 | openssl enc | tee | sha256sum',
  stream_plain: 'shell stream, plain: dump; tar | pigz -p 2 | tee | sha256sum',
  keeper_restore: 'keeper restore, safety backup skipped (CLI → helper)',
  keeper_restore_safety: 'keeper restore, with its safety backup',
  shell_restore: 'shell restore: openssl enc -d; tar -xzf; mariadb < database.sql',
  preview: 'restore preview, encrypted (in-process: locate + buildPreview)',
  preview_cli: 'restore preview through keeper CLI → helper',
  verify: 'verify, encrypted (in-process verifyArchive)',
  verify_cli: 'verify through keeper CLI → helper (backup.verify)',
  offsite_sftp: "keeper off-site copy to a local sftp target (archive + sidecars, temp names, rename, remote sha256sum)",
  scp: 'scp of the same archive to the same sshd (no check)',
} as const;
type Name = keyof typeof CONTENDERS;

function args() {
  const { values } = parseArgs({
    options: { size: { type: 'string' }, runs: { type: 'string' }, only: { type: 'string' }, json: { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`npm run bench -- [--size MiB (250)] [--runs N (3)] [--json FILE] [--dir DIR (./var/bench)] [--only a,b,…]\n  contenders: ${Object.keys(CONTENDERS).join(', ')}\n`);
    process.exit(0);
  }
  const int = (s: string | undefined, d: number, name: string, min: number) => {
    if (s === undefined) return d;
    if (!/^\d+$/.test(s) || Number(s) < min) throw new Error(`--${name}: expected a whole number ≥ ${min}, got ${JSON.stringify(s)}`);
    return Number(s);
  };
  return {
    size: int(values.size, 250, 'size', 2),
    runs: int(values.runs, 3, 'runs', 1),
    only: only(values.only),
    json: values.json ? resolve(values.json) : null,
    dir: resolve(values.dir ?? join(PROJECT_ROOT, 'var', 'bench')),
  };
}

/** --only keeper_enc,keeper_restore: a subset (the restore, preview and verify need keeper_enc's archive) */
function only(list: string | undefined): Set<Name> {
  const all = Object.keys(CONTENDERS) as Name[];
  if (list === undefined) return new Set(all);
  const picked = list.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = picked.filter((x) => !(all as string[]).includes(x));
  if (bad.length || !picked.length) throw new Error(`--only: unknown contender(s) ${bad.join(', ') || '(none)'}; known: ${all.join(', ')}`);
  const set = new Set(picked as Name[]);
  if ([...set].some((n) => /restore|preview|verify/.test(n) && n !== 'shell_restore') || set.has('shell_restore')) set.add('keeper_enc');
  return set;
}

const rotate = <T>(xs: T[], k: number): T[] => xs.map((_, i) => xs[(i + k) % xs.length]);

async function tool(cmd: string, a: string[]): Promise<string> {
  const r = await run(cmd, a).catch(() => null);
  return (r?.stdout || r?.stderr || '').trim().split('\n')[0];
}

interface Summary {
  wall_ms: Spread | null;
  cpu_ms: Spread | null;
  job_ms?: Spread | null;
  dump_ms?: Spread | null;
  maintenance_window_ms?: Spread | null;
  helper_peak_rss_mib?: Spread | null;
  cli_peak_rss_mib?: Spread | null;
  tree_peak_rss_mib?: Spread | null;
  size_bytes?: Spread | null;
  steps?: Record<string, Spread | null>;
  mib_s?: Spread | null;
}

function summarize(xs: Sample[]): Summary {
  const pick = (f: (s: Sample) => number | undefined) => spread(xs.map(f).filter((x): x is number => typeof x === 'number'));
  const s: Summary = { wall_ms: pick((x) => x.wall_ms), cpu_ms: pick((x) => x.cpu_ms) };
  if (xs.some((x) => x.job_ms !== undefined)) s.job_ms = pick((x) => x.job_ms);
  if (xs.some((x) => x.dump_ms !== undefined)) s.dump_ms = pick((x) => x.dump_ms);
  if (xs.some((x) => x.maintenance_window_ms !== undefined)) s.maintenance_window_ms = pick((x) => x.maintenance_window_ms);
  if (xs.some((x) => x.rss)) {
    s.helper_peak_rss_mib = pick((x) => x.rss?.peak_mib.helper);
    s.cli_peak_rss_mib = pick((x) => x.rss?.peak_mib.cli);
    s.tree_peak_rss_mib = pick((x) => x.rss?.tree_peak_mib);
  }
  if (xs.some((x) => x.size_bytes !== undefined)) s.size_bytes = pick((x) => x.size_bytes);
  if (xs.some((x) => x.extra?.mib_s !== undefined)) s.mib_s = pick((x) => x.extra?.mib_s as number | undefined);
  const stepNames = [...new Set(xs.flatMap((x) => Object.keys(x.steps ?? {})))];
  if (stepNames.length) s.steps = Object.fromEntries(stepNames.map((n) => [n, pick((x) => x.steps?.[n])]));
  return s;
}

const sec = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)}`);
const range = (s: Spread | null | undefined, f = sec) => (s ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '-');

/** keeper's counterpart of each shell contender, for the ratio column */
const KEEPER_OF: Partial<Record<Name, Name>> = { original_enc: 'keeper_enc', stream_enc: 'keeper_enc', stream_plain: 'keeper_plain', shell_restore: 'keeper_restore', scp: 'offsite_sftp' };

function table(sum: Partial<Record<Name, Summary>>): string {
  const head = ['contender', 'wall s median (min–max)', 'CPU s', 'peak RSS MiB (helper)', 'window s (dump s)', 'keeper ÷ this'];
  const rows: string[][] = [];
  for (const n of Object.keys(CONTENDERS) as Name[]) {
    const s = sum[n];
    if (!s) continue;
    const k = KEEPER_OF[n] ? sum[KEEPER_OF[n]!] : undefined;
    const ratio = k?.wall_ms && s.wall_ms ? `${(k.wall_ms.median / s.wall_ms.median).toFixed(2)} (${KEEPER_OF[n]})` : '';
    rows.push([
      n,
      n === 'preview' || n === 'cli_start' ? range(s.wall_ms, (x) => `${Math.round(x ?? 0)} ms`) : range(s.wall_ms),
      sec(s.cpu_ms?.median),
      s.helper_peak_rss_mib ? `${s.helper_peak_rss_mib.max}` : '',
      s.maintenance_window_ms ? `${range(s.maintenance_window_ms)} (${sec(s.dump_ms?.median)})` : s.dump_ms ? `(${sec(s.dump_ms.median)})` : '',
      ratio,
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line(head), '|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

/** Where each contender's CPU went in its last run: per process kind, and the helper per thread. */
function profile(samples: Partial<Record<Name, Sample[]>>): string[] {
  const fmt = (r: Record<string, number>) =>
    Object.entries(r).filter(([, v]) => v >= 0.01).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  const out: string[] = [];
  for (const [n, xs] of Object.entries(samples) as [Name, Sample[]][]) {
    const r = xs[xs.length - 1]?.rss;
    if (!r?.cpu_s || !Object.keys(r.cpu_s).length) continue;
    const threads = Object.keys(r.helper_threads_cpu_s ?? {}).length ? ` — helper threads: ${fmt(r.helper_threads_cpu_s)}` : '';
    const m = r.helper_split_mib;
    const mem = m ? ` — helper at its highest RSS sample: ${m.rss} MiB = private ${m.anon} + file-backed ${m.file}` : '';
    out.push(`  ${n}: ${fmt(r.cpu_s)}${threads}${mem}`);
  }
  return out;
}

async function main(): Promise<number> {
  const a = args();
  if (!(await hasCommand('pigz'))) {
    process.stderr.write(
      'bench: pigz is missing; the shell-stream contender needs it.\n' +
        '  install it with: sudo apt-get install pigz   (Debian package "pigz")\n',
    );
    return 3;
  }
  for (const t of ['tar', 'openssl', 'sha256sum', 'tee', 'mariadb-dump', 'mariadb']) {
    if (!(await hasCommand(t))) {
      process.stderr.write(`bench: ${t} is missing from PATH\n`);
      return 3;
    }
  }
  mkdirSync(a.dir, { recursive: true });
  const load0 = loadavg();
  say(`size ${a.size} MiB, ${a.runs} run(s), load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const { info, L, shape } = await benchSandbox(a.dir, a.size, say);
  try {
    return await measure(a, info, L, shape, load0);
  } finally {
    say('stopping the sandbox (its data stays for the next bench)');
    await downSandbox(info.dir);
  }
}

async function measure(
  a: ReturnType<typeof args>,
  info: Awaited<ReturnType<typeof benchSandbox>>['info'],
  L: Awaited<ReturnType<typeof benchSandbox>>['L'],
  shape: Awaited<ReturnType<typeof benchSandbox>>['shape'],
  load0: number[],
): Promise<number> {
  const config = loadConfig(info.config);
  const env = readEnv(config);
  const work = join(L.dir, 'bench-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  chmodSync(work, 0o700);
  const passphrase = randomBytes(18).toString('base64url');
  const c: BenchCtx = {
    config,
    configPath: info.config,
    env,
    work,
    defaultsFile: join(work, 'client.cnf'),
    passFile: join(work, 'passphrase'),
    passphrase,
    keeperBin: join(PROJECT_ROOT, 'scripts', 'keeper'),
  };
  writeFileSync(c.defaultsFile, clientOptions(env), { mode: 0o600 });
  writeFileSync(c.passFile, passphrase + '\n', { mode: 0o600 });
  await setEncryption(c, true);
  say(`code tree: ${shape.files} files, ${(shape.code_bytes / 1048576).toFixed(0)} MiB; warming the page cache`);
  await warmCache(c);

  const samples: Partial<Record<Name, Sample[]>> = {};
  // every contender starts with no dirty pages waiting: the previous one's writes are not its to pay for
  const flushDisk = () => execFileSync('sync');
  flushDisk();
  const add = (n: Name, s: Sample) => {
    flushDisk();
    (samples[n] ??= []).push(s);
    say(`  ${n}: ${sec(s.wall_ms)} s wall, ${sec(s.cpu_ms)} s CPU${s.maintenance_window_ms !== undefined ? `, window ${s.maintenance_window_ms} ms (dump ${s.dump_ms} ms)` : ''}${s.rss?.peak_mib.helper ? `, helper ${s.rss.peak_mib.helper} MiB` : ''}`);
  };
  let dumpBytes = 0;
  let sshd: Sshd | null = null;
  try {
  for (let r = 0; r < a.runs; r++) {
    say(`run ${r + 1}/${a.runs}`);
    if (a.only.has('cli_start')) add('cli_start', await cliStart(c));
    let enc: { id: number; file: string } | null = null;
    const backups: Name[] = rotate(['keeper_enc', 'keeper_plain', 'original_enc', 'stream_enc', 'stream_plain'], r);
    for (const n of backups) {
      if (!a.only.has(n)) continue;
      if (n === 'keeper_enc') {
        const s = await keeperBackup(c, true);
        enc = { id: s.id, file: s.file };
        add(n, s);
      } else if (n === 'keeper_plain') add(n, await keeperBackup(c, false));
      else if (n === 'original_enc') add(n, await originalBackup(c));
      else if (n === 'stream_enc') add(n, await streamBackup(c, true));
      else add(n, await streamBackup(c, false));
    }
    if (a.only.has('responsiveness')) add('responsiveness', await responsiveness(c));
    if (!enc) continue; // only contenders that need no archive were asked for
    await setEncryption(c, true); // the stored passphrase opens the archive for preview and restore
    if (a.only.has('preview')) for (let i = 0; i < 3; i++) add('preview', await keeperPreview(c, enc.id));
    if (a.only.has('preview_cli')) add('preview_cli', await keeperPreviewCli(c, enc.id));
    if (a.only.has('verify')) add('verify', await keeperVerify(c, enc.file));
    if (a.only.has('verify_cli')) add('verify_cli', await verifyCli(c, enc.id));
    if (a.only.has('offsite_sftp') || a.only.has('scp')) {
      sshd ??= await startSshd(join(work, 'sshd'));
      const target = benchSftpTarget(sshd, join(sshd.path, 'bench'));
      mkdirSync(target.path, { recursive: true });
      for (const n of rotate(['offsite_sftp', 'scp'] as Name[], r)) {
        if (!a.only.has(n)) continue;
        add(n, n === 'scp' ? await scpCopy(target, enc.file) : await keeperOffsite(c, target, enc.id));
      }
      rmSync(target.path, { recursive: true, force: true });
    }
    const restores: Name[] = rotate(['keeper_restore', 'shell_restore', 'keeper_restore_safety'], r);
    for (const n of restores) {
      if (!a.only.has(n)) continue;
      if (n === 'keeper_restore') add(n, await keeperRestore(c, enc.id, false));
      else if (n === 'keeper_restore_safety') add(n, await keeperRestore(c, enc.id, true));
      else add(n, await shellRestore(c, enc.file));
    }
    const side = JSON.parse(readFileSync(`${enc.file}.json`, 'utf8')) as { metadata: { database_size_bytes: number } };
    dumpBytes = side.metadata.database_size_bytes;
  }
  } finally {
    await sshd?.stop();
  }
  const load1 = loadavg();

  const sum = Object.fromEntries(Object.entries(samples).map(([n, xs]) => [n, summarize(xs)])) as Partial<Record<Name, Summary>>;
  const med = (n: Name, k: keyof Summary = 'wall_ms') => (sum[n]?.[k] as Spread | null | undefined)?.median;
  const ratio = (x: number | undefined, y: number | undefined) => (x !== undefined && y ? Math.round((x / y) * 100) / 100 : null);
  const ratios = {
    backup_keeper_enc_vs_original_enc: ratio(med('keeper_enc'), med('original_enc')),
    backup_keeper_enc_vs_stream_enc: ratio(med('keeper_enc'), med('stream_enc')),
    backup_keeper_plain_vs_stream_plain: ratio(med('keeper_plain'), med('stream_plain')),
    backup_keeper_enc_job_vs_stream_enc: ratio(med('keeper_enc', 'job_ms'), med('stream_enc')),
    restore_keeper_vs_shell: ratio(med('keeper_restore'), med('shell_restore')),
    restore_keeper_with_safety_vs_shell: ratio(med('keeper_restore_safety'), med('shell_restore')),
    offsite_keeper_vs_scp: ratio(med('offsite_sftp'), med('scp')),
    cpu_keeper_enc_vs_stream_enc: ratio(med('keeper_enc', 'cpu_ms'), med('stream_enc', 'cpu_ms')),
  };
  const targets = judgeTargets(samples);

  const out = {
    generated_at: new Date().toISOString(),
    machine: { cpus: cpus().length, mem_gib: Math.round(totalmem() / 2 ** 30), load_before: load0, load_after: load1, node: process.version },
    tools: { tar: await tool('tar', ['--version']), pigz: await tool('pigz', ['--version']), openssl: await tool('openssl', ['version']), mariadb: await tool('mariadb', ['--version']) },
    data: { size_mib: a.size, runs: a.runs, code_files: shape.files, code_bytes: shape.code_bytes, database_dump_bytes: dumpBytes, sandbox: info.dir },
    contenders: CONTENDERS,
    summary: sum,
    ratios,
    targets,
    samples,
  };
  if (a.json) {
    writeFileSync(a.json, JSON.stringify(out, null, 2) + '\n');
    say(`wrote ${a.json} (${statSync(a.json).size} bytes)`);
  }

  const lines = [
    `phpborg-keeper bench: ${a.size} MiB code (${shape.files} files) + ${(dumpBytes / 1048576).toFixed(0)} MiB dump, ${a.runs} run(s), ${cpus().length} CPUs, load ${load0[0].toFixed(1)} → ${load1[0].toFixed(1)}`,
    '',
    table(sum),
    '',
    `off-site copy ${sum.offsite_sftp?.mib_s?.median.toFixed(0) ?? '-'} MiB/s (with the remote check), scp ${sum.scp?.mib_s?.median.toFixed(0) ?? '-'} MiB/s;`,
    `preview in-process median ${med('preview')?.toFixed(0)} ms; verify ${sum.verify?.mib_s?.median.toFixed(0)} MiB/s; keeper enc job (helper only) ${sec(med('keeper_enc', 'job_ms'))} s; dump inside keeper ${sec(med('keeper_enc', 'dump_ms'))} s`,
    `ratios: ${Object.entries(ratios).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`,
    '',
    'Profile of the last run (CPU s by process; the helper by thread, and its memory split):',
    ...profile(samples),
    '',
    ...targets.map(targetLine),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
