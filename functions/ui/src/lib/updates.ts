// Shapes of the update routes, normalised.
type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => !!x && typeof x === 'object' && !Array.isArray(x);
const str = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
const num = (x: unknown): number | null => (typeof x === 'number' ? x : typeof x === 'string' && x !== '' && !Number.isNaN(Number(x)) ? Number(x) : null);

export interface UpdateStatus {
  version: string | null;
  commit: string | null;
  branch: string | null;
  php: string | null;
  node: string | null;
  borg: string | null;
  mariadb: string | null;
  available: boolean;
  behind: number;
  latestCommit: string | null;
  latestVersion: string | null;
  latestSubject: string | null;
  lastCheck: string | null;
}

export interface Commit {
  hash: string;
  short: string;
  author: string;
  date: string;
  subject: string;
  body: string;
}

export interface HistoryRow {
  id: number;
  date: string | null;
  finished: string | null;
  fromVersion: string | null;
  fromCommit: string | null;
  toVersion: string | null;
  toCommit: string | null;
  status: string;
  failedStep: string | null;
  error: string | null;
  backupId: number | null;
  actor: string | null;
  kind: string | null;
  /** for a rollback: the update it undid */
  parentId: number | null;
}

export function toStatus(raw: unknown): UpdateStatus {
  let o = isObj(raw) ? raw : {};
  if (isObj(o.status)) o = o.status;
  if (isObj(o.data)) o = o.data;
  const v = isObj(o.versions) ? o.versions : o;
  return {
    version: str(o.current_version ?? o.installed_version ?? o.version),
    commit: str(o.current_commit ?? o.commit),
    branch: str(o.branch),
    php: str(v.php_version ?? v.php),
    node: str(v.node_version ?? v.node),
    borg: str(v.borg_version ?? v.borg),
    mariadb: str(v.mariadb_version ?? v.mysql_version ?? v.mariadb ?? v.mysql),
    available: o.available === true || o.update_available === true,
    behind: num(o.commits_behind) ?? 0,
    latestCommit: str(o.latest_commit),
    latestVersion: str(o.latest_version),
    latestSubject: str(o.latest_subject ?? o.latest_commit_subject),
    lastCheck: str(o.last_check ?? o.last_checked_at ?? o.checked_at),
  };
}

export function toCommits(raw: unknown): { commits: Commit[]; total: number | null } {
  let o: unknown = raw;
  if (isObj(o) && isObj(o.data)) o = o.data;
  let arr: unknown[] = [];
  let total: number | null = null;
  if (Array.isArray(o)) arr = o;
  else if (isObj(o)) {
    const a = o.commits ?? o.items ?? o.changelog;
    if (Array.isArray(a)) arr = a;
    total = num(o.total ?? o.count);
  }
  const commits = arr.filter(isObj).map((c) => {
    const hash = String(c.hash ?? c.commit ?? '');
    return {
      hash,
      short: String(c.short_hash ?? c.short ?? hash.slice(0, 7)),
      author: String(c.author ?? c.author_name ?? ''),
      date: String(c.date ?? c.author_date ?? ''),
      subject: String(c.subject ?? c.message ?? ''),
      body: String(c.body ?? ''),
    };
  });
  return { commits, total };
}

export function toHistory(raw: unknown): HistoryRow[] {
  let o: unknown = raw;
  if (isObj(o)) o = o.history ?? o.items ?? o.data ?? [];
  if (!Array.isArray(o)) return [];
  return o.filter(isObj).map((h) => ({
    id: num(h.id) ?? 0,
    date: str(h.started_at ?? h.date ?? h.created_at),
    finished: str(h.finished_at),
    fromVersion: str(h.from_version),
    fromCommit: str(h.from_commit),
    toVersion: str(h.to_version),
    toCommit: str(h.to_commit ?? h.target),
    status: String(h.status ?? ''),
    failedStep: str(h.failed_step),
    error: str(h.error),
    backupId: num(h.backup_id),
    actor: str(h.actor_name),
    kind: str(h.kind ?? h.type),
    parentId: num(h.parent_id),
  }));
}
