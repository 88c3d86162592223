// Test helpers shared by the sandbox tests that compare an install before and after (backup, restore,
// update, emergency, bare metal): file trees and table checksums, units, the CLI as a real process,
// API calls with an admin token, passphrase files.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../../runtime/runner.ts';
import { loadConfig } from '../../runtime/config.ts';
import { allUnits } from '../../runtime/install.ts';
import { tableChecksums } from '../../runtime/mariadb-import.ts';
import { PROJECT_ROOT } from '../../runtime/helper/spawn.ts';
import type { JobView } from '../../state/jobs.ts';
import { codeExcluder } from '../../functions/backup/sources.ts';
import type { Sandbox } from './sandbox.ts';

export type TreeNode = { type: string; mode?: number; sha?: string; link?: string };

export interface TreeOptions {
  exclude?: (rel: string, isDir: boolean) => boolean;
  /** top-level names to keep */
  only?: (name: string) => boolean;
  /** false: leave modes out (compared apart) */
  modes?: boolean;
  /** record a symlink's own mode too */
  symlinkModes?: boolean;
}

/** Every entry below `root` (sorted walk): type, mode, content hash or link target. {} when root is missing. */
export function snapshotTree(root: string, opts: TreeOptions = {}): Record<string, TreeNode> {
  const out: Record<string, TreeNode> = {};
  if (!existsSync(root)) return out;
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      if (!rel && opts.only && !opts.only(name)) continue;
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(a);
      const mode = opts.modes === false ? undefined : st.mode & 0o7777;
      if (st.isDirectory()) {
        if (opts.exclude?.(r, true)) continue;
        out[r] = { type: 'dir', mode };
        walk(a, r);
      } else if (st.isSymbolicLink()) out[r] = { type: 'symlink', ...(opts.symlinkModes ? { mode } : {}), link: readlinkSync(a) };
      else out[r] = { type: 'file', mode, sha: createHash('sha256').update(readFileSync(a)).digest('hex') };
    }
  };
  walk(root, '');
  return out;
}

/** What a user compares after a restore: code (excluded dirs left out), SSH (content), sudoers, units, /etc, tables. */
export async function installSnapshot(sb: Sandbox) {
  const c = sb.config;
  const prefixed = (n: string) => n.startsWith(c.file_prefix);
  return {
    code: snapshotTree(c.paths.code, { exclude: codeExcluder(c.exclude_dirs) }),
    // SSH modes are normalised on restore (0600/0700): compare content here, modes separately
    ssh: snapshotTree(c.paths.ssh, { modes: false }),
    sshBorg: snapshotTree(c.paths.ssh_borg, { modes: false }),
    sudoers: snapshotTree(c.paths.sudoers, { only: prefixed }),
    systemd: snapshotTree(c.paths.systemd, { only: prefixed }),
    etc: snapshotTree(c.paths.etc),
    tables: await tableChecksums(sb.readEnv().env),
  };
}

/** Asserts each of `units` (default: every unit of the install) is active. */
export async function unitsActive(sb: Sandbox, units = allUnits(sb.config, sb.readEnv().env)): Promise<void> {
  for (const u of units) {
    const r = await sb.systemctl('is-active', u);
    assert.equal(r.stdout.trim(), 'active', `${u} is active`);
  }
}

/** Rewrites the sandbox's keeper.json with `changes` (e.g. a short health_timeout_s) and reloads it. */
export function patchConfig(sb: Sandbox, changes: Record<string, unknown>): void {
  const raw = JSON.parse(readFileSync(sb.info.config, 'utf8')) as Record<string, unknown>;
  writeFileSync(sb.info.config, JSON.stringify({ ...raw, ...changes }, null, 2));
  sb.config = loadConfig(sb.info.config);
}

/** A 0600 file holding `passphrase` and a newline, as an administrator would write one. */
export function passphraseFile(path: string, passphrase: string): string {
  writeFileSync(path, passphrase + '\n', { mode: 0o600 });
  return path;
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs a command (argument array) to its end; stdin gets `input` (default nothing). */
export function spawnOut(cmd: string, args: string[], opts: { input?: string; prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const argv = [...(opts.prefix ?? []), cmd, ...args];
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
    child.stdin.end(opts.input ?? '');
  });
}

export const scriptPath = (name: string) => join(PROJECT_ROOT, 'scripts', name);

/** `keeper --config <the sandbox's> …` as a separate process, like an administrator runs it. */
export function keeperCli(sb: Sandbox, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return spawnOut(scriptPath('keeper'), ['--config', sb.info.config, ...args], opts);
}

/** The last line of a --json command's output, parsed. */
export const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;

/** A request to the runner's app as the admin holding `token` (JSON content type unless overridden). */
export function apiRequest(runner: Runner, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return runner.request(path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
}

/** A 202 {job_id} answer (asserted), followed to the job's end. */
export async function jobOf(runner: Runner, res: Response, timeoutMs: number): Promise<JobView> {
  assert.equal(res.status, 202, await res.clone().text());
  const { job_id } = (await res.json()) as { job_id: string };
  return runner.jobs.wait(job_id, timeoutMs);
}
