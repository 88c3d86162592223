// The notification mails, in French and English, plain text and HTML, written once as a small
// document (subject, intro, sections of label/value rows) and rendered twice: one shape for every
// notification (subject, intro, then label/value sections).
import type { Lang } from '../../runtime/locale.ts';

/** What the mails know about one backup archive (all optional: a failed run knows little). */
export interface BackupFacts {
  file: string;
  /** full path of the archive */
  location?: string | null;
  size_bytes?: number | null;
  type?: string | null;
  encrypted?: boolean | null;
  created_at?: string | Date | null;
  created_by?: string | null;
  phpborg_version?: string | null;
  database_size_bytes?: number | null;
  database_records?: number | null;
  files_count?: number | null;
  sha256?: string | null;
  maintenance_window_ms?: number | null;
}

export interface Failure {
  step?: string | null;
  error: string;
}

export type NotifyEvent =
  | {
      kind: 'backup_created';
      backup: BackupFacts;
      retention_count?: number | null;
      deleted?: string[];
      /** when a restore drill last proved a backup restorable (null: never) */
      last_proven?: string | Date | null;
      /** the off-site copy of this backup per target */
      offsite?: { target: string; status: string; error?: string | null }[];
    }
  | { kind: 'drill_failed'; backup: BackupFacts; at: string | Date; who?: string | null; failure: Failure }
  | { kind: 'backup_failed'; type?: string | null; who?: string | null; at: string | Date; failure: Failure }
  | {
      kind: 'restore_completed';
      backup: BackupFacts;
      who?: string | null;
      at: string | Date;
      safety_backup?: string | null;
      /** set when this restore is the manual rollback of that update (history id) */
      update_id?: number | null;
    }
  | {
      kind: 'restore_failed';
      backup?: BackupFacts | null;
      who?: string | null;
      at: string | Date;
      failure: Failure;
      /** what happened to the install after the failure */
      rollback: 'rolled_back' | 'rollback_failed' | 'not_needed' | 'unknown';
      rollback_error?: string | null;
      safety_backup?: string | null;
      /** set when this restore is the manual rollback of that update (history id) */
      update_id?: number | null;
    }
  | {
      kind: 'update_completed';
      who?: string | null;
      at: string | Date;
      from_version?: string | null;
      to_version?: string | null;
      from_commit?: string | null;
      to_commit?: string | null;
      backup_file?: string | null;
    }
  | {
      kind: 'update_failed';
      who?: string | null;
      at: string | Date;
      from_version?: string | null;
      to_version?: string | null;
      failure: Failure;
      /** rolled_back: back on the previous version; rollback_failed: action needed; not_needed: nothing was changed */
      rollback: 'rolled_back' | 'rollback_failed' | 'not_needed';
      /** what the install looks like and how to get out, when the rollback failed */
      rollback_error?: string | null;
      backup_file?: string | null;
    }
  | { kind: 'retention_cleanup'; at: string | Date; deleted: string[]; retention_count?: number | null; location?: string | null }
  | { kind: 'test'; at: string | Date; from: string; who?: string | null };

export interface RenderOptions {
  lang: Lang;
  /** IANA zone dates are shown in */
  timezone: string;
  /** link to phpBorg's backup settings page, when known */
  link?: string | null;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

type Row = [label: string, value: string];
interface Section {
  icon: string;
  title: string;
  rows?: Row[];
  lines?: string[];
}
interface Doc {
  subject: string;
  intro: string;
  sections: Section[];
  /** shown as an alert (failures) */
  tone: 'ok' | 'fail';
}

// ---------- formatting ----------

export function formatBytes(n: number | null | undefined, lang: Lang): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = lang === 'fr' ? ['o', 'Ko', 'Mo', 'Go', 'To'] : ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const num = i === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : 1);
  return `${lang === 'fr' ? num.replace('.', ',') : num} ${units[i]}`;
}

export function formatNumber(n: number | null | undefined, lang: Lang): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-US').format(n).replace(/\u202f|\u00a0/g, ' ');
}

/** "2025-01-24 14:30:22 (Europe/Paris)" in the install's zone. */
export function formatDate(d: string | Date | null | undefined, timezone: string): string {
  if (d === null || d === undefined) return '—';
  const date = typeof d === 'string' ? new Date(d) : d;
  if (Number.isNaN(date.getTime())) return String(d);
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const p = (t: string) => parts.find((x) => x.type === t)?.value ?? '00';
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}:${p('second')} (${timezone})`;
}

const TYPE_LABEL: Record<Lang, Record<string, string>> = {
  en: {
    manual: 'Manual backup',
    scheduled: 'Scheduled backup',
    pre_update: 'Automatic backup before update',
    pre_restore: 'Safety backup before restore',
    pre_emergency_restore: 'Safety backup before emergency restore',
  },
  fr: {
    manual: 'Sauvegarde manuelle',
    scheduled: 'Sauvegarde planifiée',
    pre_update: 'Sauvegarde automatique avant mise à jour',
    pre_restore: 'Sauvegarde de sécurité avant restauration',
    pre_emergency_restore: "Sauvegarde de sécurité avant restauration d'urgence",
  },
};

function typeLabel(t: string | null | undefined, lang: Lang): string {
  if (!t) return '—';
  return TYPE_LABEL[lang][t] ?? t;
}

const yesNo = (b: boolean | null | undefined, lang: Lang) =>
  b === null || b === undefined ? '—' : b ? (lang === 'fr' ? 'Oui' : 'Yes') : lang === 'fr' ? 'Non' : 'No';
const orDash = (s: string | null | undefined) => (s === null || s === undefined || s === '' ? '—' : s);

// ---------- the documents ----------

const T = {
  en: {
    hello: 'Hello,',
    footer: 'phpBorg Backup System',
    info: 'Backup Information',
    content: 'Backup Content',
    location: 'Location',
    retention: 'Retention Policy',
    filename: 'Filename',
    size: 'Size',
    type: 'Type',
    encrypted: 'Encrypted',
    created: 'Created',
    createdBy: 'Created by',
    version: 'phpBorg version',
    dbSize: 'Database size',
    records: 'records',
    files: 'Files',
    hash: 'Hash (SHA256)',
    window: 'Workers paused for',
    keeping: (n: number) => `Keeping last ${n} backups`,
    olderDeleted: 'Older backups will be automatically deleted',
    deletedNow: 'Deleted now:',
    failure: 'Failure',
    step: 'Step',
    error: 'Error',
    date: 'Date',
    who: 'Requested by',
    restored: 'Restore',
    safety: 'Safety backup taken before',
    rollback: 'State of the installation',
    update: 'Update',
    from: 'From',
    to: 'To',
    preBackup: 'Backup taken before the update',
    drill: 'Restore drill',
    lastProven: 'Last proven restorable',
    never: 'never',
  },
  fr: {
    hello: 'Bonjour,',
    footer: 'Système de sauvegarde phpBorg',
    info: 'Informations sur la sauvegarde',
    content: 'Contenu de la sauvegarde',
    location: 'Emplacement',
    retention: 'Politique de rétention',
    filename: 'Fichier',
    size: 'Taille',
    type: 'Type',
    encrypted: 'Chiffrée',
    created: 'Créée le',
    createdBy: 'Créée par',
    version: 'Version de phpBorg',
    dbSize: 'Taille de la base de données',
    records: 'enregistrements',
    files: 'Fichiers',
    hash: 'Empreinte (SHA256)',
    window: 'Workers en pause pendant',
    keeping: (n: number) => `Conservation des ${n} dernières sauvegardes`,
    olderDeleted: 'Les sauvegardes plus anciennes seront supprimées automatiquement',
    deletedNow: 'Supprimées maintenant :',
    failure: 'Échec',
    step: 'Étape',
    error: 'Erreur',
    date: 'Date',
    who: 'Demandé par',
    restored: 'Restauration',
    safety: 'Sauvegarde de sécurité prise avant',
    rollback: "État de l'installation",
    update: 'Mise à jour',
    from: 'De',
    to: 'Vers',
    preBackup: 'Sauvegarde prise avant la mise à jour',
    drill: 'Exercice de restauration',
    lastProven: 'Dernière restauration prouvée',
    never: 'jamais',
  },
};

function ms(n: number | null | undefined, lang: Lang): string {
  if (n === null || n === undefined) return '—';
  const s = n / 1000;
  return `${lang === 'fr' ? s.toFixed(1).replace('.', ',') : s.toFixed(1)} s`;
}

function backupSections(b: BackupFacts, o: RenderOptions): Section[] {
  const t = T[o.lang];
  const db =
    b.database_size_bytes === null || b.database_size_bytes === undefined
      ? '—'
      : formatBytes(b.database_size_bytes, o.lang) +
        (b.database_records !== null && b.database_records !== undefined
          ? ` (${formatNumber(b.database_records, o.lang)} ${t.records})`
          : '');
  const sections: Section[] = [
    {
      icon: '📦',
      title: t.info,
      rows: [
        [t.filename, b.file],
        [t.size, formatBytes(b.size_bytes, o.lang)],
        [t.type, typeLabel(b.type, o.lang)],
        [t.encrypted, yesNo(b.encrypted, o.lang)],
        [t.created, formatDate(b.created_at, o.timezone)],
        [t.createdBy, orDash(b.created_by)],
      ],
    },
    {
      icon: '📊',
      title: t.content,
      rows: [
        [t.version, orDash(b.phpborg_version)],
        [t.dbSize, db],
        [t.files, formatNumber(b.files_count, o.lang)],
        [t.hash, orDash(b.sha256)],
        ...(b.maintenance_window_ms !== null && b.maintenance_window_ms !== undefined
          ? ([[t.window, ms(b.maintenance_window_ms, o.lang)]] as Row[])
          : []),
      ],
    },
  ];
  if (b.location) sections.push({ icon: '💾', title: t.location, lines: [b.location] });
  return sections;
}

function failureSection(f: Failure, o: RenderOptions): Section {
  const t = T[o.lang];
  return { icon: '❌', title: t.failure, rows: [[t.step, orDash(f.step)], [t.error, f.error]] };
}

function retentionSection(count: number | null | undefined, deleted: string[] | undefined, o: RenderOptions): Section | null {
  const t = T[o.lang];
  if ((count === null || count === undefined) && !deleted?.length) return null;
  const lines: string[] = [];
  if (count !== null && count !== undefined) lines.push(t.keeping(count), t.olderDeleted);
  if (deleted?.length) lines.push(t.deletedNow, ...deleted.map((f) => `  ${f}`));
  return { icon: '🔄', title: t.retention, lines };
}

/** One line per target: verified, or failed with the reason and that it will be retried. */
function offsiteSection(copies: { target: string; status: string; error?: string | null }[] | undefined, o: RenderOptions): Section | null {
  if (!copies?.length) return null;
  const fr = o.lang === 'fr';
  const lines = copies.map((c) =>
    c.status === 'verified'
      ? `${c.target}: ${fr ? 'copiée et vérifiée' : 'copied and verified'}`
      : `${c.target}: ${fr ? 'ÉCHEC' : 'FAILED'}${c.error ? ` (${c.error})` : ''}${fr ? ' — nouvel essai automatique plus tard' : ' — retried automatically later'}`,
  );
  return { icon: '☁️', title: fr ? 'Copies hors site' : 'Off-site copies', lines };
}

function rollbackText(e: Extract<NotifyEvent, { kind: 'restore_failed' }>, lang: Lang): string {
  const fr = lang === 'fr';
  switch (e.rollback) {
    case 'rolled_back':
      return fr
        ? "L'installation a été remise dans son état d'avant la restauration."
        : 'The installation was put back as it was before the restore.';
    case 'rollback_failed':
      return (
        (fr
          ? "Le retour à l'état précédent a échoué : intervention manuelle nécessaire"
          : 'Putting the installation back failed: manual action is needed') +
        (e.rollback_error ? ` (${e.rollback_error})` : '') +
        (e.safety_backup ? (fr ? `. Sauvegarde de sécurité : ${e.safety_backup}` : `. Safety backup: ${e.safety_backup}`) : '.')
      );
    case 'not_needed':
      return fr ? "Rien n'avait encore été modifié : l'installation est intacte." : 'Nothing had been changed yet: the installation is intact.';
    default:
      return fr ? "État inconnu : vérifiez l'installation." : 'Unknown: check the installation.';
  }
}

function doc(e: NotifyEvent, o: RenderOptions): Doc {
  const t = T[o.lang];
  const fr = o.lang === 'fr';
  switch (e.kind) {
    case 'backup_created': {
      const sections = backupSections(e.backup, o);
      const r = retentionSection(e.retention_count, e.deleted, o);
      if (r) sections.push(r);
      if (e.last_proven !== undefined) {
        sections.push({ icon: '🧪', title: t.drill, rows: [[t.lastProven, e.last_proven ? formatDate(e.last_proven, o.timezone) : t.never]] });
      }
      const off = offsiteSection(e.offsite, o);
      if (off) sections.push(off);
      return {
        tone: 'ok',
        subject: fr ? '[phpBorg] Sauvegarde créée avec succès' : '[phpBorg] Backup Created Successfully',
        intro: fr
          ? 'Une nouvelle sauvegarde phpBorg a été créée avec succès :'
          : 'A new phpBorg backup was created successfully:',
        sections,
      };
    }
    case 'drill_failed':
      return {
        tone: 'fail',
        subject: fr ? "[phpBorg] Échec de l'exercice de restauration" : '[phpBorg] Restore Drill Failed',
        intro: fr
          ? "L'exercice de restauration n'a pas pu prouver que cette sauvegarde est restaurable. L'installation en service n'a pas été touchée ; faites une nouvelle sauvegarde et vérifiez-la."
          : 'The restore drill could not prove this backup restorable. The live installation was not touched; take a new backup and check it.',
        sections: [...backupSections(e.backup, o).slice(0, 1), { icon: '🕒', title: t.date, lines: [formatDate(e.at, o.timezone)] }, failureSection(e.failure, o)],
      };
    case 'backup_failed':
      return {
        tone: 'fail',
        subject: fr ? '[phpBorg] Échec de la sauvegarde' : '[phpBorg] Backup Failed',
        intro: fr
          ? "La sauvegarde phpBorg a échoué. Aucun fichier incomplet n'a été laissé ; les workers ont été redémarrés."
          : 'The phpBorg backup failed. No incomplete file was left behind; the workers were started again.',
        sections: [
          {
            icon: '📦',
            title: t.info,
            rows: [
              [t.type, typeLabel(e.type, o.lang)],
              [t.date, formatDate(e.at, o.timezone)],
              [t.who, orDash(e.who)],
            ],
          },
          failureSection(e.failure, o),
        ],
      };
    case 'restore_completed': {
      const sections: Section[] = [
        { icon: '♻️', title: t.restored, rows: [[t.date, formatDate(e.at, o.timezone)], [t.who, orDash(e.who)]] },
        ...backupSections(e.backup, o),
      ];
      if (e.safety_backup) sections.push({ icon: '🛟', title: t.safety, lines: [e.safety_backup] });
      if (e.update_id != null) {
        return {
          tone: 'ok',
          subject: fr ? `[phpBorg] Mise à jour n° ${e.update_id} annulée` : `[phpBorg] Update #${e.update_id} Rolled Back`,
          intro: fr
            ? `La mise à jour n° ${e.update_id} a été annulée : phpBorg a été restauré depuis sa sauvegarde d'avant mise à jour :`
            : `Update #${e.update_id} was rolled back: phpBorg was restored from its pre-update backup:`,
          sections,
        };
      }
      return {
        tone: 'ok',
        subject: fr ? '[phpBorg] Restauration terminée' : '[phpBorg] Restore Completed',
        intro: fr
          ? 'phpBorg a été restauré avec succès depuis une sauvegarde :'
          : 'phpBorg was restored successfully from a backup:',
        sections,
      };
    }
    case 'restore_failed': {
      const sections: Section[] = [
        { icon: '♻️', title: t.restored, rows: [[t.filename, orDash(e.backup?.file)], [t.date, formatDate(e.at, o.timezone)], [t.who, orDash(e.who)]] },
        failureSection(e.failure, o),
        { icon: '🛡️', title: t.rollback, lines: [rollbackText(e, o.lang)] },
      ];
      if (e.safety_backup && e.rollback !== 'rollback_failed') sections.push({ icon: '🛟', title: t.safety, lines: [e.safety_backup] });
      if (e.update_id != null) {
        return {
          tone: 'fail',
          subject: fr ? `[phpBorg] Échec de l'annulation de la mise à jour n° ${e.update_id}` : `[phpBorg] Rollback of Update #${e.update_id} Failed`,
          intro: fr
            ? `L'annulation de la mise à jour n° ${e.update_id} (restauration de sa sauvegarde d'avant mise à jour) a échoué.`
            : `Rolling back update #${e.update_id} (restoring its pre-update backup) failed.`,
          sections,
        };
      }
      return {
        tone: 'fail',
        subject: fr ? '[phpBorg] Échec de la restauration' : '[phpBorg] Restore Failed',
        intro: fr ? 'La restauration de phpBorg a échoué.' : 'The phpBorg restore failed.',
        sections,
      };
    }
    case 'update_completed':
      return {
        tone: 'ok',
        subject: fr ? '[phpBorg] Mise à jour terminée' : '[phpBorg] Update Completed',
        intro: fr ? 'phpBorg a été mis à jour avec succès :' : 'phpBorg was updated successfully:',
        sections: [
          {
            icon: '⬆️',
            title: t.update,
            rows: [
              [t.from, versionOf(e.from_version, e.from_commit)],
              [t.to, versionOf(e.to_version, e.to_commit)],
              [t.date, formatDate(e.at, o.timezone)],
              [t.who, orDash(e.who)],
              [t.preBackup, orDash(e.backup_file)],
            ],
          },
        ],
      };
    case 'update_failed': {
      const words = {
        rolled_back: fr
          ? ['retour arrière effectué', "La mise à jour de phpBorg a échoué ; l'installation a été remise automatiquement dans sa version précédente."]
          : ['Rolled Back', 'The phpBorg update failed; the installation was automatically rolled back to its previous version.'],
        rollback_failed: fr
          ? ['intervention nécessaire', "La mise à jour de phpBorg a échoué et le retour arrière n'a pas abouti : intervention manuelle nécessaire."]
          : ['Action Needed', 'The phpBorg update failed and the rollback did not complete: manual action is needed.'],
        not_needed: fr
          ? ['rien n’a été modifié', "La mise à jour de phpBorg n'a pas pu démarrer ; rien n'a été modifié."]
          : ['Nothing Changed', 'The phpBorg update could not start; nothing was changed.'],
      }[e.rollback];
      return {
        tone: 'fail',
        subject: fr ? `[phpBorg] Échec de la mise à jour — ${words[0]}` : `[phpBorg] Update Failed — ${words[0]}`,
        intro: words[1],
        sections: [
          {
            icon: '⬆️',
            title: t.update,
            rows: [
              [t.from, orDash(e.from_version)],
              [t.to, orDash(e.to_version)],
              [t.date, formatDate(e.at, o.timezone)],
              [t.who, orDash(e.who)],
              [t.preBackup, orDash(e.backup_file)],
            ],
          },
          failureSection(e.failure, o),
          ...(e.rollback_error
            ? [{ icon: '🛡️', title: t.rollback, lines: [e.rollback_error] } as Section]
            : []),
        ],
      };
    }
    case 'retention_cleanup':
      return {
        tone: 'ok',
        subject: fr ? '[phpBorg] Nettoyage des anciennes sauvegardes' : '[phpBorg] Old Backups Cleaned Up',
        intro: fr
          ? `${e.deleted.length} ancienne(s) sauvegarde(s) supprimée(s) selon la politique de rétention :`
          : `${e.deleted.length} old backup(s) deleted by the retention policy:`,
        sections: [
          { icon: '🗑️', title: fr ? 'Fichiers supprimés' : 'Deleted files', lines: e.deleted },
          ...(e.retention_count !== null && e.retention_count !== undefined
            ? [{ icon: '🔄', title: t.retention, lines: [t.keeping(e.retention_count)] } as Section]
            : []),
          ...(e.location ? [{ icon: '💾', title: t.location, lines: [e.location] } as Section] : []),
          { icon: '🕒', title: t.date, lines: [formatDate(e.at, o.timezone)] },
        ],
      };
    case 'test':
      return {
        tone: 'ok',
        subject: fr ? '[phpBorg] E-mail de test' : '[phpBorg] Test Email',
        intro: fr
          ? "Ceci est un e-mail de test des notifications de sauvegarde de phpBorg. Si vous le recevez, l'envoi fonctionne."
          : 'This is a test of phpBorg backup notifications. If you received it, sending works.',
        sections: [
          {
            icon: '✉️',
            title: fr ? 'Détails' : 'Details',
            rows: [
              [fr ? 'Expéditeur' : 'From', e.from],
              [fr ? 'Envoyé le' : 'Sent at', formatDate(e.at, o.timezone)],
              [t.who, orDash(e.who)],
            ],
          },
        ],
      };
  }
}

function versionOf(version: string | null | undefined, commit: string | null | undefined): string {
  if (version && commit && !version.includes(commit.slice(0, 7))) return `${version} (${commit.slice(0, 7)})`;
  return orDash(version ?? (commit ? commit.slice(0, 7) : null));
}

// ---------- rendering ----------

function renderText(d: Doc, o: RenderOptions): string {
  const t = T[o.lang];
  // French puts a space before the colon
  const colon = o.lang === 'fr' ? ' :' : ':';
  const out: string[] = [t.hello, '', d.intro, ''];
  for (const s of d.sections) {
    out.push(`${s.icon} ${s.title}${colon}`);
    for (const [k, v] of s.rows ?? []) out.push(`  - ${k}${colon} ${v}`);
    for (const l of s.lines ?? []) out.push(`  ${l}`);
    out.push('');
  }
  out.push('---', t.footer);
  if (o.link) out.push(o.link);
  return out.join('\n') + '\n';
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

function renderHtml(d: Doc, o: RenderOptions): string {
  const t = T[o.lang];
  const color = d.tone === 'ok' ? '#10B981' : '#DC2626';
  const sections = d.sections
    .map((s) => {
      const rows = (s.rows ?? [])
        .map(
          ([k, v]) =>
            `<tr><td style="padding:2px 12px 2px 0;color:#555;vertical-align:top">${escapeHtml(k)}</td>` +
            `<td style="padding:2px 0;font-family:monospace;word-break:break-all">${escapeHtml(v)}</td></tr>`,
        )
        .join('');
      const lines = (s.lines ?? []).map((l) => `<div style="font-family:monospace;white-space:pre-wrap">${escapeHtml(l)}</div>`).join('');
      return (
        `<h3 style="margin:18px 0 6px">${s.icon} ${escapeHtml(s.title)}</h3>` +
        (rows ? `<table style="border-collapse:collapse">${rows}</table>` : '') +
        lines
      );
    })
    .join('\n');
  const link = o.link ? `<br><a href="${escapeHtml(o.link)}">${escapeHtml(o.link)}</a>` : '';
  return `<!DOCTYPE html>
<html lang="${o.lang}"><head><meta charset="UTF-8"><title>${escapeHtml(d.subject)}</title></head>
<body style="font-family:Arial,sans-serif;line-height:1.5;color:#333">
<div style="max-width:640px;margin:0 auto;padding:20px">
<div style="border-left:4px solid ${color};padding-left:12px">
<p>${escapeHtml(t.hello)}</p>
<p><strong>${escapeHtml(d.intro)}</strong></p>
</div>
${sections}
<hr style="margin-top:24px;border:none;border-top:1px solid #ddd">
<p style="font-size:12px;color:#666">${escapeHtml(t.footer)}${link}</p>
</div></body></html>
`;
}

export function renderMail(e: NotifyEvent, o: RenderOptions): RenderedMail {
  const d = doc(e, o);
  return { subject: d.subject, text: renderText(d, o), html: renderHtml(d, o) };
}
