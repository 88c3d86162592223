// Where everything lives inside a sandbox: DIR is the root prefix of a real phpBorg server.
import { join } from 'node:path';

export interface Layout {
  dir: string;
  code: string;
  env: string;
  origin: string;
  ssh: string;
  /** the phpborg-borg user's SSH dir (authorized_keys of every backed-up server) */
  sshBorg: string;
  /** the Borg pool (one repository per server; not keeper's) */
  pool: string;
  sudoers: string;
  systemd: string;
  etc: string;
  storage: string;
  state: string;
  bin: string;
  systemctl: string;
  run: string;
  units: string;
  log: string;
  mysqlData: string;
  mysqlSocket: string;
  redisData: string;
  config: string;
  meta: string;
}

export function layout(dir: string): Layout {
  const code = join(dir, 'opt/newphpborg/phpBorg');
  return {
    dir,
    code,
    env: join(code, '.env'),
    origin: join(dir, 'git/phpBorg.git'),
    ssh: join(dir, 'var/lib/phpborg/.ssh'),
    sshBorg: join(dir, 'var/lib/phpborg-borg/.ssh'),
    pool: join(dir, 'opt/backups'),
    sudoers: join(dir, 'etc/sudoers.d'),
    systemd: join(dir, 'etc/systemd/system'),
    etc: join(dir, 'etc/phpborg'),
    storage: join(dir, 'opt/backups/phpborg-self-backups'),
    state: join(dir, 'var/lib/phpborg-keeper'),
    bin: join(dir, 'bin'),
    systemctl: join(dir, 'bin/systemctl'),
    run: join(dir, 'run'),
    units: join(dir, 'run/units'),
    log: join(dir, 'var/log'),
    mysqlData: join(dir, 'var/lib/mysql'),
    mysqlSocket: join(dir, 'run/mysqld/mysqld.sock'),
    redisData: join(dir, 'var/lib/redis'),
    config: join(dir, 'keeper.json'),
    meta: join(dir, 'sandbox.json'),
  };
}
