// The manual restore recipe: restoring a backup by hand with stock tools only (sha256sum, openssl,
// tar, mariadb, cp, systemctl). One text, used twice: in the emergency kit (with this server's
// values) and in the README (with the defaults). Commands are lines starting with "    $ "; the steps
// use only the variables set at the top, so the steps read the same everywhere.
//
// Shell subset used by the commands (what test/kit.test.ts runs, with argument arrays): words,
// 'single' and "double" quotes, $VAR / ${VAR}, NAME=value assignments, cd, `< file`, `> file`.

export interface RecipeValues {
  /** storage dir of the archives */
  backups: string;
  /** archive file name (no dir); a placeholder when there is none yet */
  archive: string;
  /** the archive's top folder, e.g. phpborg-backup-2025-01-24-143022 */
  top: string;
  /** scratch dir for the decrypted archive and the unpacked files */
  work: string;
  code: string;
  ssh: string;
  /** the phpborg-borg user's SSH dir */
  ssh_borg: string;
  /** name prefix of phpBorg's sudoers and unit files (file_prefix) */
  prefix: string;
  sudoers: string;
  systemd: string;
  etc: string;
  /** phpBorg's database name (DB_NAME in .env) */
  db_name: string;
  /** how root reaches MariaDB: user and socket (socket auth: no password) or host/port */
  db_admin: { user: string; host: string; port: number; socket: string };
  /** the service manager command, e.g. systemctl */
  systemctl: string;
  units: string[];
}

/** Defaults of a stock phpBorg install (README). */
export const DEFAULT_RECIPE_VALUES: RecipeValues = {
  backups: '/opt/backups/phpborg-self-backups',
  archive: 'phpborg-backup-2025-01-24-143022-manual.tar.gz',
  top: 'phpborg-backup-2025-01-24-143022',
  work: '/root/phpborg-restore',
  code: '/opt/newphpborg/phpBorg',
  ssh: '/var/lib/phpborg/.ssh',
  ssh_borg: '/var/lib/phpborg-borg/.ssh',
  prefix: 'phpborg-',
  sudoers: '/etc/sudoers.d',
  systemd: '/etc/systemd/system',
  etc: '/etc/phpborg',
  db_name: 'phpborg',
  db_admin: { user: 'root', host: 'localhost', port: 3306, socket: '/run/mysqld/mysqld.sock' },
  systemctl: 'systemctl',
  units: ['phpborg-scheduler', 'phpborg-worker@1', 'phpborg-worker@2', 'phpborg-worker@3', 'phpborg-worker@4'],
};

/** Quotes a value for the assignment block only when it needs it. */
function q(s: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** The recipe's prose in phpBorg's two languages; the commands between them are the same. */
type Lang = 'en' | 'fr';

export function manualRecipe(x: RecipeValues, lang: Lang = 'en'): string {
  const vars = `    $ BACKUPS=${q(x.backups)}
    $ ARCHIVE=${q(x.archive)}
    $ TOP_NAME=${q(x.top)}
    $ WORK=${q(x.work)}
    $ CODE=${q(x.code)}
    $ SSH_DIR=${q(x.ssh)}
    $ SSH_BORG_DIR=${q(x.ssh_borg)}
    $ PREFIX=${q(x.prefix)}
    $ SUDOERS_DIR=${q(x.sudoers)}
    $ SYSTEMD_DIR=${q(x.systemd)}
    $ ETC_DIR=${q(x.etc)}
    $ DB_NAME=${q(x.db_name)}
    $ DB_ADMIN=${q(x.db_admin.user)}
    $ DB_HOST=${q(x.db_admin.host)}
    $ DB_PORT=${q(String(x.db_admin.port))}
    $ DB_SOCKET=${q(x.db_admin.socket)}
    $ SYSTEMCTL=${q(x.systemctl)}
    $ UNITS=${q(x.units.join(' '))}`;
  const check = `    $ cd "$BACKUPS"
    $ sha256sum -c "$ARCHIVE.sha256"`;
  const scratch = `    $ mkdir -p "$WORK"
    $ chmod 700 "$WORK"
    $ install -m 600 /dev/null "$WORK/passphrase"`;
  const decrypt = `    $ openssl enc -d -aes-256-cbc -pbkdf2 -iter 100000 -md sha256 -in "$BACKUPS/$ARCHIVE" -out "$WORK/backup.tar.gz" -pass "file:$WORK/passphrase"`;
  const unpack = `    $ mkdir -p "$WORK/x"
    $ tar -xzf "$WORK/backup.tar.gz" -C "$WORK/x"
    $ TOP=$WORK/x/$TOP_NAME`;
  const stop = `    $ $SYSTEMCTL stop $UNITS`;
  const db = `    $ printf '[client]\\nuser=%s\\nhost=%s\\nport=%s\\nsocket=%s\\n' "$DB_ADMIN" "$DB_HOST" "$DB_PORT" "$DB_SOCKET" > "$WORK/my.cnf"
    $ chmod 600 "$WORK/my.cnf"
    $ mariadb --defaults-extra-file="$WORK/my.cnf" -e "CREATE DATABASE IF NOT EXISTS $DB_NAME"
    $ mariadb --defaults-extra-file="$WORK/my.cnf" "$DB_NAME" < "$TOP/database.sql"`;
  const code = `    $ mv "$CODE" "$CODE.before-restore"
    $ cp -a "$TOP/code" "$CODE"
    $ cp -a "$TOP/config/env.backup" "$CODE/.env"`;
  const config = `    $ cp -a "$SUDOERS_DIR" "$SUDOERS_DIR.before-restore"
    $ cp -a "$SYSTEMD_DIR" "$SYSTEMD_DIR.before-restore"
    $ find "$SUDOERS_DIR" -maxdepth 1 -name "$PREFIX*" -delete
    $ find "$SYSTEMD_DIR" -path "$SYSTEMD_DIR/$PREFIX*" -delete
    $ cp -a "$TOP/config/sudoers/." "$SUDOERS_DIR/"
    $ cp -a "$TOP/config/systemd/." "$SYSTEMD_DIR/"
    $ mv "$ETC_DIR" "$ETC_DIR.before-restore"
    $ cp -a "$TOP/config/etc-phpborg" "$ETC_DIR"
    $ mv "$SSH_DIR" "$SSH_DIR.before-restore"
    $ cp -a "$TOP/ssh" "$SSH_DIR"
    $ mv "$SSH_BORG_DIR" "$SSH_BORG_DIR.before-restore"
    $ cp -a "$TOP/ssh-borg" "$SSH_BORG_DIR"`;
  const start = `    $ $SYSTEMCTL daemon-reload
    $ $SYSTEMCTL start $UNITS
    $ $SYSTEMCTL is-active $UNITS`;
  const clean = `    $ rm -rf "$WORK"`;
  if (lang === 'fr') {
    return `Tout se fait en root, dans bash, une ligne à la fois. Seuls des outils standard servent :
sha256sum, openssl, tar, mariadb, cp, systemctl.

0. Définir ces variables (adapter ARCHIVE et TOP_NAME à la sauvegarde à restaurer ;
   TOP_NAME est le nom de l'archive sans « -<type>.tar.gz ») :

${vars}

1. Vérifier que l'archive est intacte (la commande doit afficher « <archive>: OK ») :

${check}

2. La déchiffrer. Créer un fichier lisible par root seul et y mettre la phrase de passe
   (une ligne, rien d'autre), par exemple avec un éditeur :

${scratch}

   puis :

${decrypt}

   (Sans -pass "file:…", openssl demande la phrase de passe au clavier. « bad decrypt » signifie
   une phrase de passe fausse. Une archive non chiffrée ne commence pas par « Salted__ » : la
   copier à la place : cp "$BACKUPS/$ARCHIVE" "$WORK/backup.tar.gz")

3. La décompresser :

${unpack}

   $TOP contient alors metadata.json, settings.json, config/, ssh/, database.sql, code/, manifest.json.

4. Arrêter phpBorg :

${stop}

5. Recharger la base de données. Le root de MariaDB se connecte par son socket ; s'il lui faut un
   mot de passe, ajouter une ligne « password=… » à $WORK/my.cnf avec un éditeur (jamais sur une
   ligne de commande) :

${db}

6. Remettre le code (l'actuel est mis de côté), avec son .env :

${code}

7. Remettre la configuration et les clés SSH comme le fait la restauration de keeper : les fichiers
   $PREFIX des dossiers sudoers et systemd deviennent exactement ceux de la sauvegarde (ceux présents
   sont copiés de côté, puis supprimés), et /etc/phpborg et les deux dossiers SSH sont remplacés en
   entier (les actuels sont gardés en *.before-restore). Sauter une ligne dont le dossier manque, ici
   ou dans $TOP (une sauvegarde plus ancienne n'a pas de ssh-borg/ : garder alors le dossier SSH
   actuel de phpborg-borg) :

${config}

   Les fichiers gardent les propriétaires et les droits qu'ils avaient dans l'archive (cp -a en
   root). Si un utilisateur a été recréé avec un autre uid : chown -R phpborg:phpborg "$CODE" "$SSH_DIR"
   et chown -R phpborg-borg:phpborg-borg "$SSH_BORG_DIR" (sshd ignore un authorized_keys dont
   l'utilisateur n'est pas propriétaire). Les dossiers SSH restent en 0700 et leurs fichiers en 0600.

   Attention : les tables créées dans la base après la sauvegarde restent (le dump ne remplace que
   ses propres tables) : les supprimer à la main si elles ne doivent pas rester. Les fichiers de
   $SUDOERS_DIR et $SYSTEMD_DIR qui ne commencent pas par $PREFIX ne sont pas à phpBorg et restent.

8. Redémarrer phpBorg et le vérifier :

${start}

9. Quand phpBorg fonctionne, supprimer le dossier de travail : il contient la sauvegarde déchiffrée
   et la phrase de passe. Garder les copies *.before-restore jusqu'à en être sûr, puis les supprimer aussi.

${clean}
`;
  }
  return `Run everything as root, in bash, one line at a time. Only stock tools are needed:
sha256sum, openssl, tar, mariadb, cp, systemctl.

0. Set these variables (adjust ARCHIVE and TOP_NAME to the backup you restore;
   TOP_NAME is the archive's name without "-<type>.tar.gz"):

${vars}

1. Check the archive is intact (it must print "<archive>: OK"):

${check}

2. Decrypt it. Create a file only root can read and put the passphrase in it
   (one line, nothing else), e.g. with an editor:

${scratch}

   then:

${decrypt}

   (Leave out -pass "file:…" to type the passphrase at a prompt instead. "bad decrypt" means a
   wrong passphrase. An archive that is not encrypted does not start with "Salted__": copy it
   instead: cp "$BACKUPS/$ARCHIVE" "$WORK/backup.tar.gz")

3. Unpack it:

${unpack}

   $TOP now holds metadata.json, settings.json, config/, ssh/, ssh-borg/, database.sql, code/,
   manifest.json (ssh-borg/ only in backups that hold the phpborg-borg user's SSH dir).

4. Stop phpBorg:

${stop}

5. Load the database. MariaDB's root logs in through its socket; if it needs a password, add a
   line "password=…" to $WORK/my.cnf with an editor (never put it on a command line):

${db}

6. Put the code back (the current one is kept aside), with its .env:

${code}

7. Put the configuration and the SSH keys back, the way keeper's restore does: the $PREFIX files
   of the sudoers and systemd folders become exactly the backup's (those there now are copied
   aside, then deleted), and /etc/phpborg and both SSH dirs are replaced whole (the current ones
   are kept as *.before-restore). Skip a line whose folder is missing, here or in $TOP
   (an older backup has no ssh-borg/: keep the current phpborg-borg SSH dir then):

${config}

   Files keep the owners and modes they had in the archive (cp -a as root). If a user was
   re-created with another uid: chown -R phpborg:phpborg "$CODE" "$SSH_DIR" and
   chown -R phpborg-borg:phpborg-borg "$SSH_BORG_DIR" (sshd ignores an authorized_keys its user
   does not own). The SSH dirs must stay 0700 and their files 0600.

   Beware: tables created in the database after the backup stay (the dump replaces only its own
   tables): drop them by hand if they must not stay. Files of $SUDOERS_DIR and $SYSTEMD_DIR that
   do not start with $PREFIX are not phpBorg's and are left alone.

8. Start phpBorg again and check it:

${start}

9. When phpBorg works, delete the scratch folder: it holds the decrypted backup and the passphrase.
   Keep the *.before-restore copies until you are sure, then delete them too.

${clean}
`;
}
