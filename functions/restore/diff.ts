// What a restore would change, as lists of names: .env keys, files, settings. Pure functions; values
// are compared by hash and never returned, so secrets cannot leak through a preview.
import { createHash } from 'node:crypto';
import { parse } from 'dotenv';
import { secretHash, type SettingsRow } from '../../archive/index.ts';

export interface NameDiff {
  /** present now, absent from the backup (lost by the restore) */
  added: string[];
  /** in the backup, absent now (brought back by the restore) */
  removed: string[];
  /** in both, with different content */
  changed: string[];
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** Compares two maps of name → content hash. */
export function diffHashes(now: Map<string, string>, backup: Map<string, string>): NameDiff {
  const d: NameDiff = { added: [], removed: [], changed: [] };
  for (const [k, h] of now) {
    if (!backup.has(k)) d.added.push(k);
    else if (backup.get(k) !== h) d.changed.push(k);
  }
  for (const k of backup.keys()) if (!now.has(k)) d.removed.push(k);
  d.added.sort();
  d.removed.sort();
  d.changed.sort();
  return d;
}

export const isEmptyDiff = (d: NameDiff) => !d.added.length && !d.removed.length && !d.changed.length;

/** .env keys whose value differs, by name only (added, removed or changed, one sorted list). */
export function diffEnv(nowText: string | null, backupText: string | null): { changed: string[]; diff: NameDiff } {
  const toMap = (t: string | null) => new Map(Object.entries(t === null ? {} : parse(t)).map(([k, v]) => [k, sha(v)]));
  const diff = diffHashes(toMap(nowText), toMap(backupText));
  return { changed: [...diff.added, ...diff.removed, ...diff.changed].sort(), diff };
}

export interface LiveSetting {
  key: string;
  value: string | null;
}

/**
 * phpBorg settings now vs in the backup. Secret rows in the backup hold `secretHash(hashKey, value)`;
 * the live value is hashed the same way to compare. Plain values are compared by SHA-256.
 */
export function diffSettings(now: LiveSetting[], backup: SettingsRow[], hashKey: string | Buffer): { modified: string[]; added: string[]; removed: string[] } {
  const b = new Map(backup.map((r) => [r.key, r]));
  const n = new Map(now.map((r) => [r.key, r]));
  const modified: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [key, row] of n) {
    const old = b.get(key);
    if (!old) {
      added.push(key);
      continue;
    }
    // an empty secret is stored as '' (nothing to hide), so it compares as ''
    const cur = row.value === null ? null : old.secret ? (row.value === '' ? '' : secretHash(hashKey, row.value)) : sha(row.value);
    const was = old.value === null ? null : old.secret ? old.value : sha(old.value);
    if (cur !== was) modified.push(key);
  }
  for (const key of b.keys()) if (!n.has(key)) removed.push(key);
  return { modified: modified.sort(), added: added.sort(), removed: removed.sort() };
}

/** Hash map of an archive-head config subtree: entries under `prefix/`, keyed by the rest of the path. */
export function headSubtree(config: Map<string, Buffer>, prefix: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, data] of config) if (p.startsWith(prefix + '/')) out.set(p.slice(prefix.length + 1), sha(data));
  return out;
}
