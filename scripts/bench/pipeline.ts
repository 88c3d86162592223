// The shell contenders without a shell: each program spawned with an argument array, stdio wired in
// Node (files opened here, pipes handed from one child to the next). Exit statuses are all checked.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { safeEnv } from '../../runtime/exec.ts';

export type Cmd = [string, ...string[]];

function done(child: ChildProcess, name: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot run ${name}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${name} failed (exit ${code ?? signal}): ${stderr().trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (t: string) => {
    if (text.length < 64 * 1024) text += t;
  });
  return () => text;
}

/** One program; stdin from a file, stdout to a file (created 0600) or collected. */
export async function runCmd(cmd: Cmd, io: { stdinFile?: string; stdoutFile?: string; cwd?: string } = {}): Promise<string> {
  const inFd = io.stdinFile ? openSync(io.stdinFile, 'r') : null;
  const outFd = io.stdoutFile ? openSync(io.stdoutFile, 'w', 0o600) : null;
  try {
    const stdio: StdioOptions = [inFd ?? 'ignore', outFd ?? 'pipe', 'pipe'];
    const child = spawn(cmd[0], cmd.slice(1), { stdio, env: safeEnv(), cwd: io.cwd });
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (t: string) => (out += t));
    await done(child, cmd[0], collect(child));
    return out;
  } finally {
    if (inFd !== null) closeSync(inFd);
    if (outFd !== null) closeSync(outFd);
  }
}

/** a | b | c …: the last stage's stdout is returned. Every stage must exit 0. */
export async function runPipeline(stages: Cmd[]): Promise<string> {
  const procs: ChildProcess[] = [];
  const waits: Promise<void>[] = [];
  for (const [i, cmd] of stages.entries()) {
    const prev = procs[i - 1];
    const child = spawn(cmd[0], cmd.slice(1), { stdio: [prev ? prev.stdout! : 'ignore', 'pipe', 'pipe'], env: safeEnv() });
    // the next stage holds its own copy of the pipe: ours would only keep the writer from seeing EPIPE
    if (prev) prev.stdout!.destroy();
    procs.push(child);
    waits.push(done(child, cmd[0], collect(child)));
  }
  const last = procs[procs.length - 1];
  let out = '';
  last.stdout!.setEncoding('utf8');
  last.stdout!.on('data', (t: string) => (out += t));
  const results = await Promise.allSettled(waits);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return out;
}
