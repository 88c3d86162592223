// DIR/sandbox.json: what `up` chose once (ports, credentials, unit commands) and reuses on restart.
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { createServer } from 'node:net';

export interface UnitSpec {
  /** program and arguments; `%i` is replaced by a template's instance */
  argv: string[];
  cwd?: string;
  /** how `start` knows the unit is up: a TCP port, a Unix socket, or the unit writing $NOTIFY_FILE */
  ready?: { tcp?: number; socket?: string; notify?: boolean };
  start_timeout_s?: number;
  /** seconds between SIGTERM and SIGKILL */
  stop_timeout_s?: number;
  /** template units (name ends with @) accept numeric instances only */
  template?: boolean;
}

export interface SandboxMeta {
  version: 1;
  created_at: string;
  /** set once the first `up` finished; a half-built DIR is rebuilt */
  complete: boolean;
  ports: { mysql: number; redis: number; api: number; keeper: number };
  admin: { id: number; username: string; email: string; password: string };
  user: { id: number; username: string; email: string; password: string };
  units: Record<string, UnitSpec>;
}

export function readMeta(file: string): SandboxMeta | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as SandboxMeta;
}

export function writeMeta(file: string, meta: SandboxMeta): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
