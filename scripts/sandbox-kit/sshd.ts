// A private OpenSSH server for the off-site tests and the bench: Debian's sshd on a loopback port, with its own host
// key, one authorized client key and internal-sftp; everything under one temp dir, stopped by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { runOk } from '../../runtime/exec.ts';
import { freePort } from './meta.ts';

export interface Sshd {
  dir: string;
  port: number;
  user: string;
  /** the client's private key (authorized) */
  key: string;
  /** known_hosts pinning this server's host key as [127.0.0.1]:port */
  knownHosts: string;
  /** a known_hosts file with ANOTHER key for the same host */
  wrongKnownHosts: string;
  /** the remote dir archives go to */
  path: string;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

export async function startSshd(dir: string): Promise<Sshd> {
  if (!existsSync(SSHD)) throw new Error('sshd missing: apt-get install -y openssh-server');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // the privilege-separation dir Debian's sshd insists on
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const keygen = (f: string) => runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'keeper-test', '-f', f]);
  const hostKey = join(dir, 'host_ed25519');
  const key = join(dir, 'client_ed25519');
  const other = join(dir, 'other_host_ed25519');
  await Promise.all([keygen(hostKey), keygen(key), keygen(other)]);
  const port = await freePort();
  const hostLine = (pub: string) => `[127.0.0.1]:${port} ${readFileSync(pub, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')}\n`;
  const knownHosts = join(dir, 'known_hosts');
  const wrongKnownHosts = join(dir, 'known_hosts.wrong');
  writeFileSync(knownHosts, hostLine(`${hostKey}.pub`));
  writeFileSync(wrongKnownHosts, hostLine(`${other}.pub`));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`), { mode: 0o600 });
  const path = join(dir, 'remote');
  mkdirSync(path, { recursive: true });
  const conf = join(dir, 'sshd_config');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 50:30:100',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${err}`);
    const up = await new Promise<boolean>((r) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dir,
    port,
    user: userInfo().username,
    key,
    knownHosts,
    wrongKnownHosts,
    path,
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
