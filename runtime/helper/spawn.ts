// Spawns ONE single-use helper for one job: [...helper_prefix, node, <helper bundle>].
// The request (task, params, job id, actor) goes on stdin and stdin is closed; parameters never
// appear in argv or the environment. stdout is NDJSON events (protocol.ts), stderr is kept as log.
import { spawn, type ChildProcess } from 'node:child_process';
import type { KeeperConfig } from '../config.ts';
import { safeEnv } from '../exec.ts';
import { decodeEvent, type HelperEvent, type HelperRequest } from './protocol.ts';

import { ensureHelperBundle, HELPER_BUNDLE, PROJECT_ROOT } from './bundle.ts';
import { errorMessage } from '../error-message.ts';

export { HELPER_BUNDLE, PROJECT_ROOT };

// glibc's malloc, tuned for a process that streams large buffers: one arena (each thread that allocates
// otherwise gets its own and keeps what it frees: the gzip workers' blocks left ~8 MiB resident that
// way), and buffers of 128 KiB and more always mapped on their own and returned when freed (glibc
// otherwise raises that threshold once one is freed, and an extraction's freed buffers stayed resident
// under the safety backup that follows it: 135 → 119 MiB; ~3 % more CPU for a backup). On the command
// line, not in the environment, so that it survives sudo's env_reset.
export const MALLOC_TUNING = ['/usr/bin/env', 'MALLOC_ARENA_MAX=1', 'MALLOC_MMAP_THRESHOLD_=131072'];

/** The exact command line of a helper (what a sudoers rule must allow). */
export function helperCommand(config: Pick<KeeperConfig, 'helper_prefix'>): string[] {
  return [...config.helper_prefix, ...MALLOC_TUNING, process.execPath, HELPER_BUNDLE];
}

export interface HelperExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** set when the helper could not be started at all */
  spawnError?: string;
  /** set when stdout carried something that is not a protocol event (the helper was killed) */
  protocolError?: string;
}

export interface HelperHandlers {
  onEvent(e: HelperEvent): void;
  onStderr(text: string): void;
}

export interface HelperHandle {
  child: ChildProcess;
  pid: number | undefined;
  exited: Promise<HelperExit>;
  kill(signal?: NodeJS.Signals): void;
}

// A line longer than this without a newline is not an event.
const MAX_LINE = 8 * 1024 * 1024;

export function spawnHelper(config: KeeperConfig, req: HelperRequest, h: HelperHandlers, o: { fault?: boolean } = {}): HelperHandle {
  ensureHelperBundle();
  const [cmd, ...args] = helperCommand(config);
  // Test tasks and fault injection exist only when the runner itself was started with KEEPER_TEST_TASKS=1.
  const extra: Record<string, string> = {};
  if (process.env.KEEPER_TEST_TASKS === '1') {
    extra.KEEPER_TEST_TASKS = '1';
    if (process.env.KEEPER_FAULT_STEP && o.fault !== false) extra.KEEPER_FAULT_STEP = process.env.KEEPER_FAULT_STEP;
  }
  const child = spawn(cmd, args, { cwd: PROJECT_ROOT, env: safeEnv(extra), stdio: ['pipe', 'pipe', 'pipe'] });

  let protocolError: string | undefined;
  let spawnError: string | undefined;
  let buf = '';
  const fail = (msg: string) => {
    if (protocolError) return;
    protocolError = msg;
    child.kill('SIGKILL');
  };
  const line = (l: string) => {
    if (protocolError || l.trim() === '') return;
    let e: HelperEvent;
    try {
      e = decodeEvent(l);
    } catch (err) {
      fail(errorMessage(err));
      return;
    }
    h.onEvent(e);
  };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      line(l);
    }
    if (buf.length > MAX_LINE) fail(`helper printed ${buf.length} bytes without a newline`);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (t: string) => h.onStderr(t));

  const exited = new Promise<HelperExit>((resolve) => {
    child.on('error', (e) => {
      spawnError = `cannot start the helper (${cmd}): ${e.message}`;
    });
    child.on('close', (code, signal) => {
      if (buf.trim() !== '') line(buf); // a last event without its newline still counts
      buf = '';
      resolve({ code, signal, ...(spawnError ? { spawnError } : {}), ...(protocolError ? { protocolError } : {}) });
    });
  });

  child.stdin!.on('error', () => {}); // a helper that dies before reading must not crash us
  child.stdin!.end(JSON.stringify(req) + '\n');

  return { child, pid: child.pid, exited, kill: (s = 'SIGTERM') => void child.kill(s) };
}
