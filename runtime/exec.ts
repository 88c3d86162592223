// Runs a program with an argument array (never a shell string) and collects its output.
import { spawn, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  /** replaces the child's environment; secrets never go here */
  env?: NodeJS.ProcessEnv;
  /** written to stdin, then closed */
  input?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** each output line as it comes (for job logs) */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const so: SpawnOptions = { cwd: opts.cwd, env: opts.env ?? safeEnv(), stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal };
    const child = spawn(cmd, args, so);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines = (stream: 'stdout' | 'stderr') => {
      let rest = '';
      return (b: Buffer) => {
        if (!opts.onLine) return;
        rest += b.toString('utf8');
        const parts = rest.split('\n');
        rest = parts.pop() ?? '';
        for (const l of parts) opts.onLine(l, stream);
      };
    };
    const lo = lines('stdout');
    const le = lines('stderr');
    child.stdout!.on('data', (b: Buffer) => (out.push(b), lo(b)));
    child.stderr!.on('data', (b: Buffer) => (err.push(b), le(b)));
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** Runs and throws with the command's stderr when it fails. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${r.code ?? r.signal}): ${why}`);
  }
  return r.stdout;
}

/** The environment children get: PATH and locale only, so no secret of ours can leak into it. */
export function safeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'HOME', 'USER', 'TMPDIR'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

/** Whether a command is on PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  const path = (process.env.PATH ?? '').split(':');
  const { access, constants } = await import('node:fs/promises');
  for (const dir of path) {
    try {
      await access(`${dir}/${name}`, constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}
