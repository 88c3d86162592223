// What goes into a backup, in the archive's order (docs/archive-format.md): settings.json, config/…, ssh/…, database.sql,
// code/. metadata.json (first) is built by the caller once sizes are known; manifest.json (last) by
// the archive writer. The archive format itself lives in archive/ only.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import type { PhpborgEnv } from '../../runtime/install.ts';
import { envPath, isPhpborgFile } from '../../runtime/install.ts';
import type { PhpborgSettingRow } from '../../runtime/mariadb.ts';
import { ENTRY, isSecretSetting, secretHash, type SettingsFile } from '../../archive/format.ts';
import type { Source } from '../../archive/write.ts';

/**
 * The code-dir exclusion from config.exclude_dirs: `node_modules` is skipped wherever it is; every
 * other entry is a path relative to the code dir (`cache`, `var/cache`), so a vendor package that
 * happens to be called "cache" (symfony/cache) is kept.
 */
export function codeExcluder(dirs: readonly string[]): (rel: string, isDir: boolean) => boolean {
  const anywhere = new Set<string>(dirs.filter((d) => d === 'node_modules'));
  const exact = new Set(dirs.filter((d) => !anywhere.has(d)).map((d) => d.replace(/^\/+|\/+$/g, '')));
  return (rel, isDir) => {
    if (!isDir) return false;
    const clean = rel.replace(/^\.\/|\/+$/g, '');
    const base = clean.slice(clean.lastIndexOf('/') + 1);
    return anywhere.has(base) || exact.has(clean);
  };
}

/** phpBorg's settings rows for settings.json: secret values replaced by a keyed hash, never in clear. */
export function settingsFile(rows: PhpborgSettingRow[], hashKey: string): SettingsFile {
  return rows.map((r) => {
    const secret = isSecretSetting(r.key, r.type);
    return { ...r, value: secret && r.value !== null && r.value !== '' ? secretHash(hashKey, r.value) : r.value, secret };
  });
}

async function kind(path: string): Promise<'file' | 'dir' | 'symlink' | 'other' | null> {
  try {
    const st = await lstat(path);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  } catch {
    return null;
  }
}

/** Entries of `dir` whose names start with `prefix`, sorted; [] when the dir is missing. */
async function prefixed(dir: string, prefix: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => isPhpborgFile(n, prefix)).sort();
  } catch {
    return [];
  }
}

export interface InstallSources {
  /** settings.json, config/…, ssh/… : small, before the dump */
  head: Source[];
  /** code/ */
  code: Source[];
  warnings: string[];
}

/** Everything but metadata.json and database.sql, from the configured paths. */
export async function installSources(config: KeeperConfig, settingsRows: PhpborgSettingRow[], env: PhpborgEnv): Promise<InstallSources> {
  const warnings: string[] = [];
  const head: Source[] = [
    { kind: 'buffer', path: ENTRY.settings, data: Buffer.from(JSON.stringify(settingsFile(settingsRows, env.APP_SECRET), null, 2) + '\n'), mode: 0o600 },
  ];
  if ((await kind(envPath(config))) === 'file') head.push({ kind: 'file', path: ENTRY.env, from: envPath(config) });
  else warnings.push(`no .env at ${envPath(config)}`);

  for (const name of await prefixed(config.paths.sudoers, config.file_prefix)) {
    const from = join(config.paths.sudoers, name);
    if ((await kind(from)) === 'file') head.push({ kind: 'file', path: `${ENTRY.sudoers}/${name}`, from });
    else warnings.push(`skipped ${from}: sudoers entries are backed up only when they are regular files`);
  }
  for (const name of await prefixed(config.paths.systemd, config.file_prefix)) {
    const from = join(config.paths.systemd, name);
    const k = await kind(from);
    if (k === 'file') head.push({ kind: 'file', path: `${ENTRY.systemd}/${name}`, from });
    else if (k === 'dir') head.push({ kind: 'dir', path: `${ENTRY.systemd}/${name}`, from });
    else warnings.push(`skipped ${from}: not a regular file or directory`);
  }
  if ((await kind(config.paths.etc)) === 'dir') head.push({ kind: 'dir', path: ENTRY.etc, from: config.paths.etc });
  if ((await kind(config.paths.ssh)) === 'dir') head.push({ kind: 'dir', path: ENTRY.ssh, from: config.paths.ssh });
  else warnings.push(`no SSH dir at ${config.paths.ssh}`);
  // phpborg-borg's authorized_keys is what every backed-up server pushes with: without it, no client
  // can back up after a restore on a new machine
  if ((await kind(config.paths.ssh_borg)) === 'dir') head.push({ kind: 'dir', path: ENTRY.sshBorg, from: config.paths.ssh_borg });
  else warnings.push(`no phpborg-borg SSH dir at ${config.paths.ssh_borg}`);

  const code: Source[] = [{ kind: 'dir', path: ENTRY.code, from: config.paths.code, exclude: codeExcluder(config.exclude_dirs) }];
  return { head, code, warnings };
}
