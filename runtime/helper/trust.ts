// What an elevated helper may believe. Under `sudo` the request comes from the runner's unprivileged
// user, and the configuration decides what root runs (service manager, paths): a configuration that
// user could write would make it root. So, when elevated, the configuration file must be root's alone.
import { realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The unprivileged user who elevated this process (sudo, pkexec, doas), or null when not elevated. */
export function elevatedFrom(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string | null {
  if (uid !== 0) return null;
  for (const k of ['SUDO_UID', 'PKEXEC_UID', 'DOAS_USER']) {
    const v = env[k];
    if (v !== undefined && v !== '' && v !== '0' && v !== 'root') return `${k}=${v}`;
  }
  return null;
}

/**
 * Throws unless `file` and every directory above it belong to root and nobody else can write them
 * (a sticky directory such as /tmp may be writable by all: others cannot replace root's entries).
 */
export function assertRootOnly(file: string): void {
  let p = realpathSync(file);
  const what = p;
  for (;;) {
    const st = statSync(p);
    const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
    if (st.uid !== 0) throw new Error(`${p} belongs to uid ${st.uid}, not root: an elevated helper only trusts a configuration (${what}) that root alone can change; chown root it`);
    if ((st.mode & 0o022) !== 0 && !(sticky && p !== what)) {
      throw new Error(`${p} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): an elevated helper only trusts a configuration (${what}) that root alone can change; chmod go-w it`);
    }
    const up = dirname(p);
    if (up === p) return;
    p = up;
  }
}
