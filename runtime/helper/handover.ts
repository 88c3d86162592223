// When sudo elevated the helper for an unprivileged runner, what the helper wrote into the storage
// dir is handed to that runner's user (modes stay 0700 / 0600): the runner streams downloads, takes
// uploads and deletes backups itself, without root. That user can already start any restore, so it
// gains nothing it did not have (wrangler-free.md).
import { chownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The runner's uid/gid when sudo elevated us, else null. */
export function sudoCaller(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): { uid: number; gid: number } | null {
  if (uid !== 0) return null;
  const u = Number(env.SUDO_UID);
  const g = Number(env.SUDO_GID);
  if (!Number.isInteger(u) || !Number.isInteger(g) || u <= 0 || env.SUDO_UID === '' || env.SUDO_GID === '') return null;
  return { uid: u, gid: g };
}

/** Chowns the storage dir and the regular files directly in it (archives, sidecars) to `to`. */
export function handOverStorage(dir: string, to: { uid: number; gid: number } | null): number {
  if (!to) return 0;
  let n = 0;
  const give = (p: string) => {
    const st = lstatSync(p);
    if (st.uid === to.uid && st.gid === to.gid) return;
    chownSync(p, to.uid, to.gid);
    n++;
  };
  try {
    if (!lstatSync(dir).isDirectory()) return 0;
  } catch {
    return 0; // no storage dir (yet): nothing to hand over
  }
  give(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) give(join(dir, e.name));
  return n;
}
