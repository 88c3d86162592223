// Sizes for the update's free-space pre-check: the install's code tree and the free bytes of the
// filesystem a path lives on.
import { lstat, opendir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';

/** Bytes under a directory (symlinks not followed); unreadable entries count as 0. */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let it;
    try {
      it = await opendir(d);
    } catch {
      continue;
    }
    for await (const e of it) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) total += await lstat(p).then((s) => s.size, () => 0);
    }
  }
  return total;
}

/** The code tree, .git, vendor and dist included. */
export function installSize(config: KeeperConfig): Promise<number> {
  return treeSize(config.paths.code);
}

/** Free bytes for unprivileged use on the filesystem holding `path` (or its nearest existing parent). */
export async function freeBytes(path: string): Promise<number | null> {
  let p = path;
  for (;;) {
    try {
      const s = await statfs(p);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      const up = dirname(p);
      if (up === p) return null;
      p = up;
    }
  }
}
