// rm -rf for trees of any size. node's own recursive rm starts the removal of every entry of the tree at
// once: on a 68,000-file code tree that is ~150 MiB of pending requests. Here one folder is listed at a
// time and its files unlinked a batch at a time, so memory stays that of one listing.
import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

const BATCH = 64;

const gone = (e: unknown) => {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
};

/** Removes `path` and everything beneath it, never following a symlink; nothing there is not an error. */
export async function removeTree(path: string): Promise<void> {
  const st = await lstat(path).catch((e: unknown) => gone(e));
  if (!st) return;
  if (!st.isDirectory()) return unlink(path).catch(gone);
  await removeContents(path);
  await rmdir(path).catch(gone);
}

async function removeContents(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: unknown) => gone(e));
  if (!entries) return;
  const files: string[] = [];
  for (const d of entries) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      await removeContents(p);
      await rmdir(p).catch(gone);
    } else files.push(p);
  }
  for (let i = 0; i < files.length; i += BATCH) await Promise.all(files.slice(i, i + BATCH).map((f) => unlink(f).catch(gone)));
}
