// The keeper CLI framework: command modules, global options (--config, --json, --help), the
// context commands get (config, ledger, jobs, actor), errors → exit status, and runTaskFromCli(),
// which runs a task through the same helper path and ledger as the API and draws its progress.
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type KeeperConfig } from '../../runtime/config.ts';
import type { Actor } from '../../runtime/task.ts';
import type { JobsRuntime } from '../../runtime/jobs.ts';
import { setTempStateDir } from '../../runtime/temp.ts';
import { ledgerPath, openLedger, type Ledger } from '../../state/ledger.ts';
import { listEvents, type JobView } from '../../state/jobs.ts';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A failure the CLI reports as {"error": {code, message, ...extra}} and exit status `exit`. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** 1 = operation failed, 2 = usage or configuration error */
    readonly exit: number = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError('usage', message, {}, 2);

export type OptionsSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export interface CliCommand {
  name: string;
  /** one line, shown in lists */
  summary: string;
  /** e.g. "keeper jobs show ID [--json]" plus optional lines describing options */
  usage: string;
  /** node:util parseArgs options of this command (the global ones are handled for you) */
  options?: OptionsSpec;
  /** how many positionals are allowed */
  positionals?: { min?: number; max?: number };
  /** returns the result: printed as JSON with --json, else through render() */
  run(ctx: CliContext, args: ParsedArgs): Promise<unknown>;
  /** human rendering of the result on stdout; default: indented JSON */
  render?(result: unknown, ctx: CliContext): void;
}

/** A command group: `keeper <group> <command> …` (e.g. `keeper jobs show ID`). */
export interface CliGroup {
  name: string;
  summary: string;
  commands: CliCommand[];
}

export type CliModule = CliCommand | CliGroup;
export const isGroup = (m: CliModule): m is CliGroup => 'commands' in m;

/** A top-level command or group as its module defines it: its name and summary are in the table. */
export type CliTopCommand = Omit<CliCommand, 'name' | 'summary'>;
export type CliTopGroup = Omit<CliGroup, 'name' | 'summary'>;

/**
 * One line of the command table (scripts/cli/index.ts): enough for `keeper --help`; the module is
 * loaded only for the command that runs, so a command loads only the code (and packages) it uses.
 */
export interface CliEntry {
  name: string;
  summary: string;
  load(): Promise<CliTopCommand | CliTopGroup>;
}

export async function loadModule(e: CliEntry): Promise<CliModule> {
  return { ...(await e.load()), name: e.name, summary: e.summary };
}

export interface CliContext {
  json: boolean;
  /** stderr is a terminal: progress bars */
  tty: boolean;
  /** the system user running the CLI: {id: null, name: "cli:<user>"} */
  actor: Actor;
  /** --config / KEEPER_CONFIG / /etc/phpborg-keeper/keeper.json / ./var/demo/keeper.json */
  configPath(): string;
  config(): KeeperConfig;
  /** the ledger, opened (and migrated) once */
  ledger(): Ledger;
  /** the Jobs runtime of this process (recovery and boot hooks done) */
  jobs(): Promise<JobsRuntime>;
  /** a human line on stdout (suppressed with --json) */
  print(line: string): void;
  /** a progress/info line on stderr (always; never pollutes --json stdout) */
  info(line: string): void;
}

export interface GlobalOptions {
  config?: string;
  json: boolean;
  help: boolean;
  rest: string[];
}

/** Pulls --config FILE / --config=FILE, --json, --help / -h out of argv wherever they are. */
export function parseGlobal(argv: string[]): GlobalOptions {
  const out: GlobalOptions = { json: false, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.rest.push(...argv.slice(i));
      break;
    }
    if (a === '--json') out.json = true;
    else if (a === '--help' || a === '-h') out.help = true;
    else if (a === '--config') {
      if (argv[i + 1] === undefined) throw usageError('--config needs a file');
      out.config = argv[++i];
    } else if (a.startsWith('--config=')) out.config = a.slice('--config='.length);
    else out.rest.push(a);
  }
  return out;
}

export function cliActor(): Actor {
  let user = process.env.SUDO_USER || '';
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = String(process.getuid?.() ?? 'unknown');
    }
  }
  return { id: null, name: `cli:${user}` };
}

export function createContext(g: GlobalOptions): CliContext & { close(): Promise<void> } {
  let config: KeeperConfig | undefined;
  let path: string | undefined;
  let ledger: Ledger | undefined;
  let jobs: JobsRuntime | undefined;
  const ctx = {
    json: g.json,
    tty: Boolean(process.stderr.isTTY),
    actor: cliActor(),
    configPath(): string {
      if (path) return path;
      const candidates = [g.config, process.env.KEEPER_CONFIG || undefined];
      const given = candidates.find((x) => x !== undefined);
      if (given) return (path = resolve(given));
      for (const f of ['/etc/phpborg-keeper/keeper.json', join(PROJECT_ROOT, 'var', 'demo', 'keeper.json')]) {
        if (existsSync(f)) return (path = f);
      }
      throw new CliError('no_config', 'no configuration: pass --config FILE or set KEEPER_CONFIG', {}, 2);
    },
    config(): KeeperConfig {
      if (config) return config;
      try {
        config = loadConfig(ctx.configPath());
        setTempStateDir(config.paths.state);
        return config;
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError('config', e.message, { issues: e.issues }, 2);
        throw e;
      }
    },
    ledger(): Ledger {
      return (ledger ??= openLedger(ledgerPath(ctx.config().paths.state)));
    },
    async jobs(): Promise<JobsRuntime> {
      if (jobs) return jobs;
      const cfg = ctx.config();
      const l = ctx.ledger();
      // every operation's code: loaded only by the commands that run a job
      const [{ startJobs }, { operations }] = await Promise.all([import('../../runtime/boot.ts'), import('../../functions/operations.ts')]);
      const started = await startJobs(operations, { config: cfg, configPath: ctx.configPath(), ledger: l }, { log: (line) => ctx.info(line) });
      // an operation whose process died is finished first: the command's own task would meet its lock
      for (const id of started.recovering) {
        const j = await started.jobs.wait(id);
        ctx.info(recoveryNotice(j));
      }
      return (jobs = started.jobs);
    },
    print(line: string) {
      if (!g.json) process.stdout.write(line + '\n');
    },
    info(line: string) {
      process.stderr.write(line + '\n');
    },
    async close() {
      // job-finished listeners (mail, audit) run after wait() resolves: let them finish first
      if (jobs) await jobs.shutdown(60_000);
      ledger?.close();
    },
  };
  return ctx;
}

/**
 * One line about an operation finished for a process that died: what happened, in the words the
 * recovery chose ("…; rolled back to <backup>"), never the job's JSON.
 */
export function recoveryNotice(j: JobView): string {
  const r = (j.result ?? {}) as { message?: unknown };
  const why = j.error?.message ?? (typeof r.message === 'string' ? r.message : '') ?? '';
  return `recovered job ${j.id} (an operation interrupted when its process died): ${j.status.replace('_', ' ')}${why ? ` — ${why.replace(/\s*\n\s*/g, ' ')}` : ''}`;
}

// ── progress ──────────────────────────────────────────────────────────────────────────────────

/** Draws a job's events: a bar redrawn in place on a TTY, plain lines otherwise (both on stderr). */
export function progressRenderer(tty: boolean) {
  let barShown = false;
  let lastLine = '';
  const clear = () => {
    if (barShown) process.stderr.write('\r\x1b[2K');
    barShown = false;
  };
  return {
    progress(percent: number, step: string, message: string) {
      const pct = Math.round(percent);
      if (tty) {
        const width = 24;
        const filled = Math.round((pct / 100) * width);
        const cols = process.stderr.columns || 100;
        const text = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${message}`;
        process.stderr.write(`\r\x1b[2K${text.slice(0, cols - 1)}`);
        barShown = true;
      } else {
        const line = `[${String(pct).padStart(3)}%] ${step}: ${message}`;
        if (line !== lastLine) process.stderr.write(line + '\n');
        lastLine = line;
      }
    },
    line(text: string) {
      clear();
      process.stderr.write(text + '\n');
    },
    done() {
      clear();
    },
  };
}

// ── running a task ────────────────────────────────────────────────────────────────────────────

/**
 * Runs `task` through the single-use helper exactly as the API does (job row, maintenance lock,
 * events in the ledger), rendering its progress on stderr. Resolves with the finished job when it
 * succeeded; otherwise throws CliError {code: the job's error code, job_id, status, error}.
 * Busy → CliError "busy" naming the running job. Ctrl-C asks the helper to stop (a second Ctrl-C
 * leaves it running on its own).
 */
export async function runTaskFromCli(ctx: CliContext, task: string, params: unknown, actor: Actor = ctx.actor): Promise<JobView> {
  const jobs = await ctx.jobs();
  const ledger = ctx.ledger();
  const r = jobs.start(task, params, actor);
  if (!r.ok) {
    throw new CliError('busy', `another maintenance operation is running: job ${r.runningJobId} is running; wait for it to finish`, {
      job_id: r.runningJobId,
    });
  }
  const id = r.jobId;
  const ui = progressRenderer(ctx.tty);
  ui.line(`job ${id}: ${task}`);
  let after = 0;
  const drain = () => {
    for (const e of listEvents(ledger, id, after)) {
      after = e.seq;
      const d = e.data;
      if (d.type === 'progress') ui.progress(d.percent, d.step, d.message);
      else if (d.type === 'log') ui.line(`  ${d.level}: ${d.message}`);
    }
  };
  const unsub = jobs.subscribe(id, drain);
  let interrupts = 0;
  const onInt = () => {
    interrupts++;
    if (interrupts === 1) ui.line(`stopping job ${id}… (Ctrl-C again to leave it running and exit)`);
    else process.exit(130);
  };
  process.on('SIGINT', onInt);
  let job: JobView;
  try {
    job = await jobs.wait(id);
  } finally {
    process.off('SIGINT', onInt);
    unsub();
  }
  drain();
  ui.done();
  if (job.status !== 'succeeded') {
    const code = job.error?.code ?? job.status;
    const message = job.error?.message ?? `job ${id} ended ${job.status}`;
    // parameters the task refused are the caller's mistake, like a usage error: exit 2
    const exit = code === 'invalid_params' ? 2 : 1;
    throw new CliError(code, message, { job_id: id, status: job.status, ...(job.error?.step ? { step: job.error.step } : {}), ...(job.result !== null ? { result: job.result } : {}) }, exit);
  }
  ui.line(`job ${id}: succeeded`);
  return job;
}

// ── help ──────────────────────────────────────────────────────────────────────────────────────

export function commandHelp(cmd: CliCommand): string {
  return `${cmd.summary}\n\nUsage: ${cmd.usage}\n\nGlobal options: --config FILE, --json (last stdout line is one JSON object), --help`;
}

export function groupHelp(g: CliGroup): string {
  const w = Math.max(...g.commands.map((c) => c.name.length));
  return `${g.summary}\n\nUsage: keeper ${g.name} <command> [options]\n\nCommands:\n${g.commands
    .map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`)
    .join('\n')}\n\nRun "keeper ${g.name} <command> --help" for details.`;
}

export function mainHelp(modules: Pick<CliEntry, 'name' | 'summary'>[]): string {
  const w = Math.max(...modules.map((m) => m.name.length));
  return `keeper — back up, restore and update a phpBorg installation

Usage: keeper [--config FILE] [--json] <command> [options]

Commands:
${modules.map((m) => `  ${m.name.padEnd(w)}  ${m.summary}`).join('\n')}

Global options:
  --config FILE  keeper configuration (default: $KEEPER_CONFIG, /etc/phpborg-keeper/keeper.json)
  --json         machine output: the last line on stdout is one JSON object (result or {"error":…})
  --help, -h     help for any command

Exit status: 0 on success only.`;
}
