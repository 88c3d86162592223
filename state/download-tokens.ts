// Short-lived download links (ledger table download_tokens), keyed by the token's hash: the ledger
// never holds a usable token.
import type { Ledger } from './ledger.ts';

export interface DownloadToken {
  backup_id: number;
  /** ISO time after which the link no longer opens */
  expires_at: string;
  /** the admin who asked for the link */
  actor_id: number | null;
  actor_name: string | null;
}

/** Stores a new link and drops the expired ones, in one transaction. */
export function insertDownloadToken(ledger: Ledger, hash: string, t: DownloadToken, now: Date): void {
  ledger.transaction(() => {
    ledger.prepare('DELETE FROM download_tokens WHERE expires_at < ?').run(now.toISOString());
    ledger
      .prepare('INSERT INTO download_tokens (token_hash, backup_id, expires_at, actor_id, actor_name) VALUES (?, ?, ?, ?, ?)')
      .run(hash, t.backup_id, t.expires_at, t.actor_id, t.actor_name);
  })();
}

/** The link stored under `hash`, expired or not; null when there is none. */
export function getDownloadToken(ledger: Ledger, hash: string): DownloadToken | null {
  const row = ledger.prepare('SELECT backup_id, expires_at, actor_id, actor_name FROM download_tokens WHERE token_hash = ?').get(hash) as DownloadToken | undefined;
  return row ?? null;
}
