// The restore preview (GET …/restore-preview), normalised for the modal. Keys follow the restore
// issue; alternatives are accepted so a renamed field degrades to "—" rather than a blank modal.
type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => !!x && typeof x === 'object' && !Array.isArray(x);
const num = (x: unknown): number | null => (typeof x === 'number' ? x : typeof x === 'string' && x !== '' && !Number.isNaN(Number(x)) ? Number(x) : null);
const str = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
const list = (x: unknown): string[] => (Array.isArray(x) ? x.map((v) => (typeof v === 'string' ? v : isObj(v) ? String(v.key ?? v.name ?? v.path ?? JSON.stringify(v)) : String(v))) : []);
const count = (x: unknown): number | null => (Array.isArray(x) ? x.length : num(x));

export interface TableCount {
  table: string;
  now: number | null;
  backup: number | null;
}

export interface Preview {
  backup: { date: string | null; version: string | null; commit: string | null; size: number | null; type: string | null; encrypted: boolean; filename: string | null };
  current: { version: string | null; commit: string | null; lastUpdate: string | null };
  /** counts are null when the live database could not be read (see warnings) */
  database: { servers: number | null; archives: number | null; users: number | null; tables: TableCount[]; dropped: string[]; totalNow: number | null; totalBackup: number | null };
  settings: { modified: string[]; added: string[]; removed: string[] };
  config: {
    env: string[];
    filesAdded: string[];
    filesRemoved: string[];
    filesChanged: string[];
    sshAdded: string[];
    sshRemoved: string[];
    sshChanged: string[];
  };
  version: { from: string | null; to: string | null; behind: number | null; ahead: number | null; downgrade: boolean; commits: string[] };
  safetyBackup: string | null;
  freeSpace: { needed: number | null; available: number | null; ok: boolean };
  warnings: string[];
}

function files(o: unknown, kind: 'added' | 'removed' | 'changed'): string[] {
  if (!isObj(o)) return [];
  const out: string[] = [];
  for (const [group, v] of Object.entries(o)) {
    if (group === 'env' || group === 'env_keys' || group === 'ssh' || group === 'ssh_keys') continue;
    if (isObj(v)) out.push(...list(v[kind]).map((p) => (p.includes('/') ? p : `${group}/${p}`)));
    else if (group === kind || group === `files_${kind}`) out.push(...list(v));
  }
  if (isObj(o.files)) out.push(...list(o.files[kind]));
  return [...new Set(out)];
}

export function toPreview(raw: unknown): Preview {
  let p = isObj(raw) ? raw : {};
  if (isObj(p.preview)) p = p.preview;
  const b = isObj(p.backup) ? p.backup : {};
  const c = isObj(p.current) ? p.current : {};
  const db = isObj(p.database) ? p.database : {};
  const st = isObj(p.settings) ? p.settings : {};
  const cf = isObj(p.config) ? p.config : {};
  const v = isObj(p.version) ? p.version : {};
  const fs = isObj(p.free_space) ? p.free_space : {};

  const tables: TableCount[] = [];
  const t = db.tables ?? db.row_counts ?? db.counts;
  if (isObj(t)) {
    for (const [name, val] of Object.entries(t)) {
      if (isObj(val)) tables.push({ table: name, now: num(val.now ?? val.current), backup: num(val.backup ?? val.in_backup) });
    }
  } else if (Array.isArray(t)) {
    for (const r of t) if (isObj(r)) tables.push({ table: String(r.table ?? r.name), now: num(r.now ?? r.current), backup: num(r.backup ?? r.in_backup) });
  }
  const sum = (k: 'now' | 'backup') => (tables.length && tables.every((x) => x[k] !== null) ? tables.reduce((s, x) => s + (x[k] ?? 0), 0) : null);

  const env = cf.env ?? cf.env_keys ?? cf.env_changed;
  const envList = isObj(env) ? [...list(env.changed), ...list(env.added), ...list(env.removed), ...list(env.keys)] : list(env);
  const ssh = cf.ssh ?? cf.ssh_keys;
  const commits = v.commits ?? v.commit_subjects;

  return {
    backup: {
      date: str(b.date ?? b.backup_date ?? b.created_at),
      version: str(b.version ?? b.phpborg_version),
      commit: str(b.commit ?? b.git_commit),
      size: num(b.size ?? b.size_bytes),
      type: str(b.type ?? b.backup_type),
      encrypted: b.encrypted === true || b.encrypted === 1,
      filename: str(b.filename ?? b.file),
    },
    current: { version: str(c.version ?? c.phpborg_version), commit: str(c.commit ?? c.git_commit), lastUpdate: str(c.last_update ?? c.last_updated ?? c.updated_at) },
    database: {
      servers: count(db.servers_added),
      archives: count(db.archives_added),
      users: count(db.users_added),
      tables,
      dropped: list(db.tables_dropped),
      totalNow: num(db.total_now ?? db.records_now) ?? sum('now'),
      totalBackup: num(db.total_backup ?? db.records_backup) ?? sum('backup'),
    },
    settings: { modified: list(st.modified), added: list(st.added), removed: list(st.removed) },
    config: {
      env: [...new Set(envList)],
      filesAdded: files(cf, 'added'),
      filesRemoved: files(cf, 'removed'),
      filesChanged: files(cf, 'changed'),
      sshAdded: isObj(ssh) ? list(ssh.added) : [],
      sshRemoved: isObj(ssh) ? list(ssh.removed) : [],
      sshChanged: isObj(ssh) ? list(ssh.changed) : [],
    },
    version: {
      from: str(v.from),
      to: str(v.to),
      behind: num(v.commits_behind),
      ahead: num(v.commits_ahead),
      downgrade: v.downgrade === true,
      commits: Array.isArray(commits) ? commits.map((x) => (isObj(x) ? String(x.subject ?? x.message ?? '') : String(x))).filter(Boolean) : [],
    },
    safetyBackup: str(isObj(p.safety_backup) ? (p.safety_backup.filename ?? p.safety_backup.name) : p.safety_backup),
    freeSpace: {
      needed: num(fs.needed ?? fs.needed_bytes ?? fs.required),
      available: num(fs.available ?? fs.available_bytes ?? fs.free),
      ok: fs.ok !== false,
    },
    warnings: list(p.warnings),
  };
}
