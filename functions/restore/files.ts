// File-level restore primitives: swap a whole tree in (the old one moved aside, never deleted before the
// new one is in place), sync the phpborg-* entries of a shared system dir, set owners and modes, and
// describe a tree for comparisons. No archive parsing here: inputs are already-extracted staging dirs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  copyFile,
  lchown,
  lstat,
  mkdir,
  readdir,
  readlink,
  rename,
  symlink,
  utimes,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runOk } from '../../runtime/exec.ts';
import { isPhpborgFile } from '../../runtime/install.ts';
import { removeTree } from '../../runtime/remove-tree.ts';

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Where a tree is moved aside while a restore runs: a sibling, so the rename stays on one filesystem. */
export function asidePath(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.keeper-old-${tag}`);
}

/** Where replaceTree copies the new tree before swapping it in. */
export function incomingPath(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.keeper-new-${tag}`);
}

export interface Swap {
  target: string;
  /** the previous tree, moved aside; null when there was none */
  aside: string | null;
}

/**
 * Puts `incoming` (a sibling of `target`, same filesystem) in place of `target`. The current tree is
 * renamed aside first; if the second rename fails it is renamed back. `incoming === null` means
 * "there should be nothing here" (the backup had no such dir): the current tree is only moved aside.
 */
export async function swapIn(incoming: string | null, target: string, tag: string): Promise<Swap> {
  let aside: string | null = null;
  if (await exists(target)) {
    aside = asidePath(target, tag);
    await removeTree(aside);
    await rename(target, aside);
  }
  if (incoming === null) return { target, aside };
  try {
    await mkdir(dirname(target), { recursive: true });
    await rename(incoming, target);
  } catch (e) {
    if (aside) await rename(aside, target).catch(() => {});
    throw e;
  }
  return { target, aside };
}

/** Puts the moved-aside tree back (the restored one is deleted): used when a later step failed. */
export async function undoSwap(s: Swap): Promise<void> {
  if (await exists(s.target)) {
    const trash = asidePath(s.target, `trash-${Date.now()}`);
    await rename(s.target, trash);
    await removeTree(trash);
  }
  if (s.aside) await rename(s.aside, s.target);
}

/**
 * Moves the excluded dirs (caches, node_modules: never in an archive) of a tree moved aside back into
 * the tree that replaced it, where it has none; returns their relative paths. Used when a restore from
 * an archive put back a tree whose moved-aside original is at hand (crash recovery).
 */
export async function moveExcludedBack(from: string, to: string, excluded: (rel: string, isDir: boolean) => boolean): Promise<string[]> {
  const moved: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(from, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(from, r));
      if (!st.isDirectory()) continue;
      if (excluded(r, true)) {
        if ((await exists(join(to, rel))) && !(await exists(join(to, r)))) {
          await rename(join(from, r), join(to, r));
          moved.push(r);
        }
      } else await walk(r);
    }
  };
  await walk('');
  return moved;
}

/** The restore succeeded: the moved-aside tree can go. */
export async function finishSwap(s: Swap): Promise<void> {
  if (s.aside) await removeTree(s.aside);
}

/** Copies a tree (files, dirs, symlinks as links), keeping permission bits and mtimes. */
export async function copyTree(src: string, dest: string): Promise<void> {
  const st = await lstat(src);
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dest);
    return;
  }
  if (st.isDirectory()) {
    await mkdir(dest, { recursive: true });
    for (const name of await readdir(src)) await copyTree(join(src, name), join(dest, name));
    await chmod(dest, st.mode & 0o7777);
    await utimes(dest, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) throw new Error(`refusing to copy ${src}: not a file, directory or symlink`);
  await copyFile(src, dest);
  await chmod(dest, st.mode & 0o7777);
  await utimes(dest, st.atime, st.mtime);
}

/**
 * Replaces `target` with a copy of `src` (or removes it when src is null), by way of a sibling temp
 * copy and swapIn, so a failure never leaves a half-copied tree in place.
 */
export async function replaceTree(src: string | null, target: string, tag: string): Promise<Swap> {
  if (src === null) return swapIn(null, target, tag);
  const incoming = incomingPath(target, tag);
  await removeTree(incoming);
  await mkdir(dirname(target), { recursive: true });
  try {
    await copyTree(src, incoming);
    return await swapIn(incoming, target, tag);
  } catch (e) {
    await removeTree(incoming);
    throw e;
  }
}

export interface SyncChange {
  added: string[];
  removed: string[];
}

/**
 * Makes the phpborg-* entries of a shared system dir (sudoers.d, systemd/system) equal to `src`:
 * each prefixed entry of src replaces its namesake (temp name + rename), each prefixed entry of dest
 * absent from src is removed. Entries without the prefix are never touched. `check` vets a file
 * before it is renamed into place (visudo). Returns what was written and removed.
 */
export async function syncPrefixed(
  src: string | null,
  dest: string,
  prefix: string,
  opts: { check?: (tmpFile: string) => Promise<void> } = {},
): Promise<SyncChange> {
  const change: SyncChange = { added: [], removed: [] };
  const srcNames = src && (await exists(src)) ? (await readdir(src)).filter((n) => isPhpborgFile(n, prefix)) : [];
  const destNames = (await exists(dest)) ? (await readdir(dest)).filter((n) => isPhpborgFile(n, prefix)) : [];
  if (srcNames.length) await mkdir(dest, { recursive: true });
  for (const name of srcNames) {
    const s = join(src!, name);
    const d = join(dest, name);
    // a dot in the temp name: sudo's #includedir skips such files, so a half-written one is never read
    const tmp = join(dest, `.${name}.keeper-tmp`);
    await removeTree(tmp);
    await copyTree(s, tmp);
    try {
      if (opts.check && (await lstat(s)).isFile()) await opts.check(tmp);
      await removeTree(d);
      await rename(tmp, d);
    } catch (e) {
      await removeTree(tmp);
      throw e;
    }
    change.added.push(d);
  }
  for (const name of destNames) {
    if (srcNames.includes(name)) continue;
    const d = join(dest, name);
    await removeTree(d);
    change.removed.push(d);
  }
  return change;
}

/** `visudo -c -f` on a candidate sudoers file, when visudo exists (containers often lack it). */
export async function visudoCheck(file: string, visudo: string | null): Promise<void> {
  if (!visudo) return;
  await runOk(visudo, ['-c', '-q', '-f', file], { timeoutMs: 30_000 });
}

export interface Ownership {
  uid: number;
  gid: number;
}

/** Resolves config.owner's user and group names to ids (getent, so NSS users work too). */
export async function resolveOwner(owner: { user: string; group: string } | null): Promise<Ownership | null> {
  if (!owner) return null;
  const id = async (db: 'passwd' | 'group', name: string) => {
    if (/^\d+$/.test(name)) return Number(name);
    const out = await runOk('getent', [db, name], { timeoutMs: 10_000 }).catch(() => '');
    const n = Number(out.split(':')[2]);
    if (!out || !Number.isInteger(n)) throw new Error(`config.owner: no such ${db === 'passwd' ? 'user' : 'group'} "${name}"`);
    return n;
  };
  return { uid: await id('passwd', owner.user), gid: await id('group', owner.group) };
}

/** chown -R without following symlinks. */
export async function chownTree(root: string, who: Ownership): Promise<void> {
  const st = await lstat(root);
  await lchown(root, who.uid, who.gid);
  if (st.isDirectory()) for (const name of await readdir(root)) await chownTree(join(root, name), who);
}

/** SSH dir modes: every dir 0700, every file 0600 (sshd refuses keys readable by others). */
export async function tightenSsh(root: string): Promise<void> {
  const st = await lstat(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    await chmod(root, 0o700);
    for (const name of await readdir(root)) await tightenSsh(join(root, name));
  } else if (st.isFile()) await chmod(root, 0o600);
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  sha256?: string;
  linkname?: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every entry under root (relative path → type, mode, size, hash or link target); {} when root is absent. */
export async function describeTree(root: string, opts: { skip?: (rel: string) => boolean } = {}): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  if (!(await exists(root))) return out;
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (opts.skip?.(r)) continue;
      const p = join(dir, name);
      const st = await lstat(p);
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) out[r] = { type: 'symlink', mode, size: 0, linkname: await readlink(p) };
      else if (st.isDirectory()) {
        out[r] = { type: 'dir', mode, size: 0 };
        await walk(p, r);
      } else if (st.isFile()) out[r] = { type: 'file', mode, size: st.size, sha256: await sha256File(p) };
      else out[r] = { type: 'other', mode, size: 0 };
    }
  };
  const st = await lstat(root);
  if (st.isDirectory()) await walk(root, '');
  else if (st.isFile()) out[''] = { type: 'file', mode: st.mode & 0o7777, size: st.size, sha256: await sha256File(root) };
  return out;
}
