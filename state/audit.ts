// The audit log: who did what, when, with which outcome. Details are redacted: never a secret.
import type { Ledger } from './ledger.ts';
import { redact, type Actor } from './jobs.ts';

export interface AuditEntry {
  actor: Actor;
  /** e.g. "backup.create", "settings.update", "system.services" */
  action: string;
  /** what it acted on: a job id, a backup id, a settings key… */
  target?: string | null;
  /** e.g. "succeeded", "failed", "rejected", "started" */
  outcome: string;
  details?: unknown;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: Actor;
  action: string;
  target: string | null;
  outcome: string;
  details: unknown;
}

export function audit(ledger: Ledger, e: AuditEntry, now = new Date()): number {
  const r = ledger
    .prepare('INSERT INTO audit_log (at, actor_id, actor_name, action, target, outcome, details_json) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(
      now.toISOString(),
      e.actor.id,
      e.actor.name,
      e.action,
      e.target ?? null,
      e.outcome,
      e.details === undefined ? null : JSON.stringify(redact(e.details)),
    );
  return Number(r.lastInsertRowid);
}

export interface AuditPage {
  items: AuditRow[];
  total: number;
  page: number;
  per_page: number;
}

/** Newest first; `action` matches exactly or as a prefix ending in '.' (e.g. "backup." ). */
export function listAudit(ledger: Ledger, opts: { page?: number; per_page?: number; action?: string } = {}): AuditPage {
  const page = Math.max(1, Math.floor(opts.page ?? 1));
  const per_page = Math.min(200, Math.max(1, Math.floor(opts.per_page ?? 50)));
  const where = opts.action ? (opts.action.endsWith('.') ? 'WHERE action LIKE ?' : 'WHERE action = ?') : '';
  const args = opts.action ? [opts.action.endsWith('.') ? `${opts.action.replace(/[%_]/g, '')}%` : opts.action] : [];
  const total = (ledger.prepare(`SELECT COUNT(*) AS n FROM audit_log ${where}`).get(...args) as { n: number }).n;
  const rows = ledger
    .prepare(`SELECT * FROM audit_log ${where} ORDER BY id DESC LIMIT ? OFFSET ?`)
    .all(...args, per_page, (page - 1) * per_page) as {
    id: number;
    at: string;
    actor_id: number | null;
    actor_name: string | null;
    action: string;
    target: string | null;
    outcome: string;
    details_json: string | null;
  }[];
  return {
    items: rows.map((r) => ({
      id: r.id,
      at: r.at,
      actor: { id: r.actor_id, name: r.actor_name ?? 'unknown' },
      action: r.action,
      target: r.target,
      outcome: r.outcome,
      details: r.details_json === null ? null : JSON.parse(r.details_json),
    })),
    total,
    page,
    per_page,
  };
}
