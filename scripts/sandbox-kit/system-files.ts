// The rest of a phpBorg server's footprint: the phpborg and phpborg-borg users' SSH dirs, the Borg
// pool, sudoers files, systemd unit files and /etc/phpborg (agents' mTLS CA in certs/, ssl/). Real key material from ssh-keygen and openssl.
import { mkdirSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk, safeEnv } from '../../runtime/exec.ts';
import type { Layout } from './layout.ts';

async function keygen(file: string, comment: string): Promise<void> {
  await runOk('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-C', comment, '-f', file], { env: safeEnv() });
  chmodSync(file, 0o600);
}

export async function writeSshKeys(L: Layout, servers: string[]): Promise<void> {
  mkdirSync(L.ssh, { recursive: true, mode: 0o700 });
  chmodSync(L.ssh, 0o700);
  await keygen(join(L.ssh, 'id_ed25519'), 'phpborg@phpborg-server');
  await Promise.all(
    servers.map(async (s) => {
      const d = join(L.ssh, 'keys', s);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      await keygen(join(d, 'id_ed25519'), `phpborg@${s}`);
    }),
  );
  chmodSync(join(L.ssh, 'keys'), 0o700);
  writeFileSync(join(L.ssh, 'authorized_keys'), readFileSync(join(L.ssh, 'id_ed25519.pub')), { mode: 0o600 });
  writeFileSync(join(L.ssh, 'known_hosts'), servers.map((s, i) => `${s}.example.lan,10.0.0.${i + 10} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'A'.repeat(43)}\n`).join(''), { mode: 0o644 });
}

/** the sudoers files phpBorg's installer drops (names as they ship; contents abridged) */
export const SUDOERS: Record<string, string> = {
  'phpborg-workers': `# phpBorg workers: borg and service control without a password
Defaults:phpborg !requiretty
phpborg ALL=(root) NOPASSWD: /usr/bin/borg, /usr/bin/systemctl restart phpborg-worker@*, /usr/bin/systemctl stop phpborg-worker@*, /usr/bin/systemctl start phpborg-worker@*
`,
  'phpborg-backup-server': `# phpBorg backup server: repository maintenance in the Borg pool
phpborg ALL=(root) NOPASSWD: /usr/bin/chown -R phpborg-borg\\:phpborg-borg /opt/backups/*, /usr/bin/mkdir -p /opt/backups/*
`,
  'phpborg-agent-worker': `# phpBorg agent tasks run by the workers
phpborg ALL=(root) NOPASSWD: /usr/bin/systemctl restart phpborg-agent
`,
  'phpborg-www-data': `# php-fpm asks for a worker restart through the path unit
www-data ALL=(phpborg) NOPASSWD: /usr/bin/touch /opt/newphpborg/phpBorg/var/restart-workers
`,
  'phpborg-agent': `# phpBorg agent self-update
phpborg ALL=(root) NOPASSWD: /usr/bin/install -m 0755 /opt/newphpborg/phpBorg/var/agent/* /usr/local/bin/
`,
};

export function writeSudoers(L: Layout): void {
  mkdirSync(L.sudoers, { recursive: true });
  for (const [name, text] of Object.entries(SUDOERS)) {
    const f = join(L.sudoers, name);
    writeFileSync(f, text);
    chmodSync(f, 0o440);
  }
}

/** phpBorg's unit files (the web side is nginx + php-fpm, not phpBorg units) */
export function unitFileTexts(): Record<string, string> {
  const code = '/opt/newphpborg/phpBorg';
  return {
    'phpborg-worker@.service': `[Unit]
Description=phpBorg worker %i
After=network.target mariadb.service redis-server.service
PartOf=phpborg-workers.target

[Service]
Type=simple
User=phpborg
WorkingDirectory=${code}
ExecStart=/usr/bin/php ${code}/bin/worker --id=%i
Restart=always
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=phpborg-workers.target
`,
    'phpborg-workers.target': `[Unit]
Description=phpBorg worker pool
Wants=phpborg-worker@1.service phpborg-worker@2.service phpborg-worker@3.service phpborg-worker@4.service

[Install]
WantedBy=multi-user.target
`,
    'phpborg-scheduler.service': `[Unit]
Description=phpBorg scheduler
After=network.target mariadb.service redis-server.service

[Service]
Type=simple
User=phpborg
WorkingDirectory=${code}
ExecStart=/usr/bin/php ${code}/bin/scheduler
Restart=always

[Install]
WantedBy=multi-user.target
`,
    'phpborg-restart.path': `[Unit]
Description=Watch for phpBorg worker restart requests

[Path]
PathModified=${code}/var/restart-workers

[Install]
WantedBy=multi-user.target
`,
    'phpborg-restart.service': `[Unit]
Description=Restart phpBorg workers on request

[Service]
Type=oneshot
ExecStart=/usr/bin/systemctl restart phpborg-workers.target
`,
  };
}

export function writeUnitFiles(L: Layout): void {
  mkdirSync(L.systemd, { recursive: true });
  for (const [name, text] of Object.entries(unitFileTexts())) writeFileSync(join(L.systemd, name), text, { mode: 0o644 });
}

/**
 * The phpborg-borg user's SSH dir: authorized_keys holds one forced-command line per backed-up
 * server (borg serve restricted to its repository in the pool). Losing it stops every client's backups.
 */
export async function writeBorgSsh(L: Layout, servers: string[]): Promise<void> {
  mkdirSync(L.sshBorg, { recursive: true, mode: 0o700 });
  chmodSync(L.sshBorg, 0o700);
  const lines = servers.map((s) => {
    const pub = readFileSync(join(L.ssh, 'keys', s, 'id_ed25519.pub'), 'utf8').trim();
    return `command="borg serve --restrict-to-path ${L.pool}/${s}",restrict ${pub}\n`;
  });
  writeFileSync(join(L.sshBorg, 'authorized_keys'), lines.join(''), { mode: 0o600 });
}

/** The Borg pool: one repository folder per server (shared dir 0775, not keeper's). */
export function writePool(L: Layout, servers: string[]): void {
  mkdirSync(L.pool, { recursive: true });
  chmodSync(L.pool, 0o775);
  for (const s of servers) {
    const repo = join(L.pool, s, 'backup');
    mkdirSync(join(repo, 'data/0'), { recursive: true });
    writeFileSync(join(repo, 'README'), 'This is a Borg Backup repository.\nSee https://borgbackup.readthedocs.io/\n');
    writeFileSync(join(repo, 'config'), `[repository]\nversion = 1\nsegments_per_dir = 1000\nmax_segment_size = 524288000\nappend_only = 0\nstorage_quota = 0\nadditional_free_space = 0\nid = ${'0'.repeat(64)}\n`);
  }
}

export async function writeEtc(L: Layout): Promise<void> {
  mkdirSync(join(L.etc, 'certs'), { recursive: true, mode: 0o700 });
  const key = join(L.etc, 'certs/ca.key');
  await runOk('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', key, '-out', join(L.etc, 'certs/ca.crt'), '-days', '3650', '-subj', '/CN=phpBorg Agent CA/O=phpBorg'], { env: safeEnv() });
  chmodSync(key, 0o600);
  mkdirSync(join(L.etc, 'ssl'), { recursive: true, mode: 0o755 });
  writeFileSync(join(L.etc, 'ssl/README'), 'TLS certificates of the phpBorg web server\n', { mode: 0o644 });
}
