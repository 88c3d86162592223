// The bindings every function reaches the world through (c.env), the way a Workers function gets
// its bindings. Tests pass their own to app.request().
import type { KeeperConfig } from './config.ts';
import type { Ledger } from '../state/ledger.ts';
import type { Actor } from './task.ts';

export interface Clock {
  now(): Date;
}

/** Read side of phpBorg's MariaDB (mysql2), connected lazily from .env. */
export interface PhpborgDb {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export type StartResult = { ok: true; jobId: string } | { ok: false; runningJobId: string };

/** Runs tasks through single-use helpers and relays their events. */
export interface Jobs {
  /** Starts a helper for the task; a maintenance task while another runs → { ok: false }. */
  start(task: string, params: unknown, actor: Actor): StartResult;
  /** Live events of a job (called for each event after subscription); returns unsubscribe. */
  subscribe(jobId: string, listener: (seq: number) => void): () => void;
  /** Resolves with the job once it is final; rejects (code "timeout") after timeoutMs. */
  wait(jobId: string, timeoutMs?: number): Promise<import('../state/jobs.ts').JobView>;
}

export interface Bindings {
  config: KeeperConfig;
  configPath: string;
  ledger: Ledger;
  phpborg: PhpborgDb;
  jobs: Jobs;
  clock: Clock;
}

/** Claims of a verified phpBorg access token. */
export interface TokenClaims {
  sub: string | number;
  username: string;
  email?: string;
  roles: string[];
  exp: number;
}

export type AppEnv = { Bindings: Bindings; Variables: { user: TokenClaims; actor: Actor } };
