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
  const config = `    $ cp -a "$TOP/config/sudoers/." "$SUDOERS_DIR/"
    $ cp -a "$TOP/config/systemd/." "$SYSTEMD_DIR/"
    $ mkdir -p "$ETC_DIR"
    $ cp -a "$TOP/config/etc-phpborg/." "$ETC_DIR/"
    $ mkdir -p "$SSH_DIR"
    $ cp -a "$TOP/ssh/." "$SSH_DIR/"`;
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

7. Remettre la configuration et les clés SSH (sauter une ligne dont le dossier n'est pas dans $TOP/config) :

${config}

   Les fichiers gardent les propriétaires et les droits qu'ils avaient dans l'archive (cp -a en
   root). Si l'utilisateur phpborg a été recréé avec un autre uid : chown -R phpborg:phpborg "$CODE" "$SSH_DIR"

   Attention : ce qui a été ajouté après la sauvegarde reste en place. Les fichiers créés depuis
   dans $SUDOERS_DIR, $SYSTEMD_DIR, $ETC_DIR et $SSH_DIR, et les tables créées depuis dans la base,
   ne sont pas supprimés : les retirer à la main s'ils ne doivent pas rester.

8. Redémarrer phpBorg et le vérifier :

${start}

9. Quand phpBorg fonctionne, supprimer le dossier de travail : il contient la sauvegarde déchiffrée
   et la phrase de passe. Garder "$CODE.before-restore" jusqu'à en être sûr, puis le supprimer aussi.

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

   $TOP now holds metadata.json, settings.json, config/, ssh/, database.sql, code/, manifest.json.

4. Stop phpBorg:

${stop}

5. Load the database. MariaDB's root logs in through its socket; if it needs a password, add a
   line "password=…" to $WORK/my.cnf with an editor (never put it on a command line):

${db}

6. Put the code back (the current one is kept aside), with its .env:

${code}

7. Put the configuration and the SSH keys back (skip a line whose folder is not in $TOP/config):

${config}

   Files keep the owners and modes they had in the archive (cp -a as root). If the phpborg user
   was re-created with another uid: chown -R phpborg:phpborg "$CODE" "$SSH_DIR"

   Beware: what was added after the backup stays. Files created since in $SUDOERS_DIR,
   $SYSTEMD_DIR, $ETC_DIR and $SSH_DIR, and tables created since in the database, are not
   removed: delete them by hand if they must not stay.

8. Start phpBorg again and check it:

${start}

9. When phpBorg works, delete the scratch folder: it holds the decrypted backup and the passphrase.
   Keep "$CODE.before-restore" until you are sure, then delete it too.

${clean}
`;
}
