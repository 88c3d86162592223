// The machine's programs the sandbox needs, and the Debian package that provides each.
import { hasCommand } from '../../runtime/exec.ts';

const NEEDED: Record<string, string> = {
  mariadbd: 'mariadb-server',
  'mariadb-install-db': 'mariadb-server',
  mariadb: 'mariadb-client',
  'redis-server': 'redis-server',
  git: 'git',
  'ssh-keygen': 'openssh-client',
  openssl: 'openssl',
};

/** Throws one message naming every missing program and the package to install. */
export async function requireBinaries(): Promise<void> {
  if (!(process.env.PATH ?? '').split(':').includes('/usr/sbin')) process.env.PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
  const missing: string[] = [];
  for (const [bin, pkg] of Object.entries(NEEDED)) if (!(await hasCommand(bin))) missing.push(`${bin} (apt-get install ${pkg})`);
  if (missing.length) throw new Error(`the sandbox needs programs that are not installed: ${missing.join(', ')}`);
}
