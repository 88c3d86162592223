// The rest of a phpBorg server's footprint: the phpborg user's SSH keys, sudoers files, systemd unit
// files and /etc/phpborg (agent CA). Real key material from ssh-keygen and openssl.
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

const SUDOERS: Record<string, string> = {
  'phpborg-workers': `# phpBorg workers: borg and service control without a password
Defaults:phpborg !requiretty
phpborg ALL=(root) NOPASSWD: /usr/bin/borg, /usr/bin/systemctl restart phpborg-worker@*, /usr/bin/systemctl stop phpborg-worker@*, /usr/bin/systemctl start phpborg-worker@*
`,
  'phpborg-backup-server': `# phpBorg backup server: repository maintenance
phpborg ALL=(root) NOPASSWD: /usr/bin/borg, /usr/bin/chown -R phpborg\\:phpborg /opt/backups/*, /usr/bin/mkdir -p /opt/backups/*
`,
  'phpborg-instant-recovery': `# phpBorg instant recovery: mount archives and start recovery containers
phpborg ALL=(root) NOPASSWD: /usr/bin/borg mount *, /usr/bin/fusermount -u *, /usr/bin/docker *
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

export function writeUnitFiles(L: Layout): void {
  mkdirSync(L.systemd, { recursive: true });
  const code = '/opt/newphpborg/phpBorg';
  const files: Record<string, string> = {
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
    'phpborg-api.service': `[Unit]
Description=phpBorg web API
After=network.target mariadb.service

[Service]
Type=simple
User=phpborg
WorkingDirectory=${code}/public
ExecStart=/usr/bin/php -S 127.0.0.1:8080 -t ${code}/public
Restart=always

[Install]
WantedBy=multi-user.target
`,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(L.systemd, name), text, { mode: 0o644 });
}

export async function writeEtc(L: Layout): Promise<void> {
  mkdirSync(join(L.etc, 'ca'), { recursive: true, mode: 0o700 });
  const key = join(L.etc, 'ca/ca.key');
  await runOk('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', key, '-out', join(L.etc, 'ca/ca.crt'), '-days', '3650', '-subj', '/CN=phpBorg Agent CA/O=phpBorg'], { env: safeEnv() });
  chmodSync(key, 0o600);
  writeFileSync(join(L.etc, 'agent.conf'), 'ca_cert=/etc/phpborg/ca/ca.crt\nlisten=0.0.0.0:9443\n', { mode: 0o644 });
}
