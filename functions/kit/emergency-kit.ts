// GET /api/phpborg-backup/settings/emergency-kit (admin, audit-logged): a text file with the
// encryption passphrase, its fingerprint, where the backups are, and the manual restore recipe, so
// that someone holding only this file and an archive can restore phpBorg with stock tools.
import { dirname } from 'node:path';
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import type { KeeperConfig } from '../../runtime/config.ts';
import type { PhpborgDb } from '../../runtime/bindings.ts';
import type { Actor } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import { allUnits, readEnv } from '../../runtime/install.ts';
import { getSettings } from '../../state/settings.ts';
import { listBackups } from '../../state/catalog.ts';
import { audit } from '../../state/audit.ts';
import { passphraseFingerprint, ALGO, PBKDF2_ITER } from '../../archive/crypto.ts';
import { parseArchiveFileName, archiveBaseName } from '../../archive/format.ts';
import { installPrefs } from '../../runtime/locale.ts';
import { formatBytes, formatDate } from '../notify/templates.ts';
import { DEFAULT_RECIPE_VALUES, manualRecipe, type RecipeValues } from './recipe.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export interface KitDeps {
  config: KeeperConfig;
  ledger: Ledger;
  phpborg: PhpborgDb;
}

/** This server's values for the recipe; the newest succeeded backup when there is one. */
export function recipeValues(config: KeeperConfig, storage: string, newest: { filename: string } | null): RecipeValues {
  let dbName = DEFAULT_RECIPE_VALUES.db_name;
  let units = DEFAULT_RECIPE_VALUES.units;
  try {
    const env = readEnv(config);
    dbName = env.DB_NAME;
    units = allUnits(config, env);
  } catch {
    if (config.units) units = [...config.units, ...config.extra_units];
  }
  const parsed = newest ? parseArchiveFileName(newest.filename) : null;
  const m = config.mariadb_admin;
  return {
    backups: storage,
    archive: newest?.filename ?? DEFAULT_RECIPE_VALUES.archive,
    top: parsed?.base ?? (newest ? archiveBaseName(new Date()) : DEFAULT_RECIPE_VALUES.top),
    work: DEFAULT_RECIPE_VALUES.work,
    code: config.paths.code,
    ssh: config.paths.ssh,
    ssh_borg: config.paths.ssh_borg,
    prefix: config.file_prefix,
    sudoers: config.paths.sudoers,
    systemd: config.paths.systemd,
    etc: config.paths.etc,
    db_name: dbName,
    db_admin: m.socket
      ? { user: m.user, host: 'localhost', port: m.port, socket: m.socket }
      : { user: m.user, host: m.host, port: m.port, socket: DEFAULT_RECIPE_VALUES.db_admin.socket },
    systemctl: config.service_manager.join(' '),
    units,
  };
}

export async function buildEmergencyKit(d: KitDeps, now: Date, who: Actor): Promise<string> {
  const s = getSettings(d.ledger, d.config.paths.storage);
  const p = await installPrefs(d);
  const passphrase = s.backup_encryption_passphrase;
  const fingerprint = passphrase ? await passphraseFingerprint(passphrase) : null;
  const backups = listBackups(d.ledger, { status: 'succeeded' }); // newest first
  const newest = backups[0] ?? null;
  const when = formatDate(now, p.timezone);

  const storage = newest ? dirname(newest.filepath) : s.backup_storage_path;
  const recipe = manualRecipe(recipeValues(d.config, storage, newest), p.language);
  // in the install's language, like the mails: the person holding it may read only that one
  const lines = p.language === 'fr' ? kitFr() : kitEn();
  function kitEn(): string[] {
    return [
      '==============================================================================',
      '  phpBorg — EMERGENCY KIT',
      '==============================================================================',
      `Generated ${when} by ${who.name}.`,
      '',
      'KEEP THIS FILE OFFLINE AND PRIVATE (printed, or on a USB key in a safe): it holds',
      'the passphrase of your encrypted phpBorg backups. Without the passphrase an encrypted',
      'backup cannot be restored by anyone; with it, anyone holding a backup can read it.',
      '',
      '--- Encryption passphrase ---------------------------------------------------',
      '',
      passphrase ? `Passphrase:  ${passphrase}` : 'Passphrase:  (none set: backups made now are not encrypted)',
      fingerprint ? `Fingerprint: ${fingerprint}` : 'Fingerprint: —',
      `Encryption:  ${s.backup_encryption_enabled ? 'enabled' : 'disabled'} — ${ALGO}, key and IV from PBKDF2-HMAC-SHA256,`,
      `             ${PBKDF2_ITER} iterations, openssl-compatible ("Salted__" header).`,
      'The fingerprint identifies the passphrase (keeper shows it in Settings) without revealing it.',
      'If the passphrase was changed, older backups need the passphrase of their time.',
      '',
      '--- Where the backups are ----------------------------------------------------',
      '',
      `Storage directory: ${s.backup_storage_path}`,
      newest
        ? `Newest backup:     ${newest.filename} (${newest.encrypted ? 'encrypted' : 'not encrypted'}, ${formatBytes(newest.size_bytes, 'en')}, ${formatDate(newest.created_at, p.timezone)})`
        : 'Newest backup:     (none yet)',
      `Backups kept:      ${s.backup_retention_count} per type (${backups.length} in the catalog now)`,
      'Beside each archive: <archive>.sha256 (for sha256sum -c) and <archive>.json (its metadata).',
      'Copy the backups off this server too: a kit without a backup restores nothing.',
      '',
      '--- Manual restore recipe ---------------------------------------------------',
      '',
      'keeper can do all of this for you ("keeper restore", or scripts/emergency-restore when',
      'phpBorg itself is broken). This recipe needs none of it: only the archive and this file.',
      '',
      recipe,
    ];
  }
  function kitFr(): string[] {
    return [
      '==============================================================================',
      '  phpBorg — KIT DE SECOURS',
      '==============================================================================',
      `Généré le ${when} par ${who.name}.`,
      '',
      'GARDER CE FICHIER HORS LIGNE ET EN LIEU SÛR (imprimé, ou sur une clé USB dans un coffre) :',
      'il contient la phrase de passe de vos sauvegardes phpBorg chiffrées. Sans elle, personne ne',
      'peut restaurer une sauvegarde chiffrée ; avec elle, quiconque détient une sauvegarde peut la lire.',
      '',
      '--- Phrase de passe de chiffrement --------------------------------------------',
      '',
      passphrase ? `Phrase de passe : ${passphrase}` : 'Phrase de passe : (aucune : les sauvegardes faites maintenant ne sont pas chiffrées)',
      fingerprint ? `Empreinte :       ${fingerprint}` : 'Empreinte :       —',
      `Chiffrement :     ${s.backup_encryption_enabled ? 'activé' : 'désactivé'} — ${ALGO}, clé et IV dérivés par PBKDF2-HMAC-SHA256,`,
      `                  ${PBKDF2_ITER} itérations, compatible openssl (en-tête « Salted__ »).`,
      "L'empreinte identifie la phrase de passe (keeper l'affiche dans les réglages) sans la révéler.",
      "Si la phrase de passe a changé, les sauvegardes plus anciennes demandent celle de leur époque.",
      '',
      '--- Où sont les sauvegardes -------------------------------------------------',
      '',
      `Dossier de stockage :   ${s.backup_storage_path}`,
      newest
        ? `Dernière sauvegarde :   ${newest.filename} (${newest.encrypted ? 'chiffrée' : 'non chiffrée'}, ${formatBytes(newest.size_bytes, 'fr')}, ${formatDate(newest.created_at, p.timezone)})`
        : 'Dernière sauvegarde :   (aucune pour le moment)',
      `Sauvegardes gardées :   ${s.backup_retention_count} par type (${backups.length} au catalogue actuellement)`,
      "À côté de chaque archive : <archive>.sha256 (pour sha256sum -c) et <archive>.json (ses métadonnées).",
      "Copiez aussi les sauvegardes hors de ce serveur : un kit sans sauvegarde ne restaure rien.",
      '',
      '--- Restauration manuelle ---------------------------------------------------',
      '',
      'keeper peut faire tout cela pour vous (« keeper restore », ou scripts/emergency-restore quand',
      "phpBorg lui-même est cassé). Cette recette n'en a pas besoin : seulement l'archive et ce fichier.",
      '',
      recipe,
    ];
  }
  return lines.join('\n') + '\n';
}

export async function emergencyKitHandler(c: Context<AppEnv>): Promise<Response> {
  const now = c.env.clock.now();
  const actor = c.var.actor;
  let text: string;
  try {
    text = await buildEmergencyKit(c.env, now, actor);
  } catch (e) {
    audit(c.env.ledger, { actor, action: 'settings.emergency_kit', outcome: 'failed', details: { error: errorMessage(e) } }, now);
    throw e;
  }
  const s = getSettings(c.env.ledger, c.env.config.paths.storage);
  audit(
    c.env.ledger,
    { actor, action: 'settings.emergency_kit', outcome: 'succeeded', details: { passphrase_included: !!s.backup_encryption_passphrase } },
    now,
  );
  const day = now.toISOString().slice(0, 10);
  return new Response(text, {
    status: 200,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-disposition': `attachment; filename="phpborg-emergency-kit-${day}.txt"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    },
  });
}
