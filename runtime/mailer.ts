// Sends mail with nodemailer over SMTP: keeper's own `smtp` config when given, else phpBorg's smtp.*
// settings from its database (the password decrypted the way phpBorg stores it). Only transport and
// SMTP resolution live here; what a mail says lives in functions/notify/.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type { KeeperConfig } from './config.ts';
import { errorMessage } from './error-message.ts';

export type SmtpSecurity = 'ssl' | 'tls' | 'none';

export interface SmtpTarget {
  /** where the settings came from */
  source: 'keeper' | 'phpborg';
  host: string;
  port: number;
  /** ssl = implicit TLS, tls = STARTTLS required, none = plain (STARTTLS when offered) */
  security: SmtpSecurity;
  username: string | null;
  password: string | null;
  from_email: string;
  from_name: string;
  /** the recipient: configured, else notification.email, else the from address */
  to: string;
}

/** Why mail cannot be sent, as a stable code the pages translate (the reason is the English detail). */
export type SmtpProblem = 'smtp_password_file' | 'smtp_db_unreachable' | 'smtp_disabled' | 'smtp_no_host' | 'smtp_bad_port' | 'smtp_password' | 'smtp_no_sender';
export type SmtpResolution = { ok: true; smtp: SmtpTarget } | { ok: false; code: SmtpProblem; reason: string };

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

// ---------- phpBorg's encrypted settings ----------

/** phpBorg's key for encrypted settings: SHA-256 of APP_SECRET. */
function phpborgKeys(appSecret: string): Buffer[] {
  const digest = createHash('sha256').update(appSecret, 'utf8');
  const hex = digest.copy().digest('hex');
  // raw digest (what phpBorg does); PHP's hex digest truncated to 32 bytes as a tolerated variant
  return [digest.digest(), Buffer.from(hex.slice(0, 32), 'latin1')];
}

/** Encrypts like phpBorg: base64(IV(16) ‖ AES-256-CBC(value)), key SHA-256(APP_SECRET). For tests and tools. */
export function encryptPhpborgSecret(value: string, appSecret: string): string {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', phpborgKeys(appSecret)[0], iv);
  return Buffer.concat([iv, c.update(value, 'utf8'), c.final()]).toString('base64');
}

function tryDecrypt(key: Buffer, iv: Buffer, body: Buffer): string | null {
  if (body.length === 0 || body.length % 16 !== 0) return null;
  try {
    const d = createDecipheriv('aes-256-cbc', key, iv);
    const out = Buffer.concat([d.update(body), d.final()]);
    const text = out.toString('utf8');
    // a wrong key passes the padding check now and then; it almost never yields valid UTF-8 text too
    return Buffer.from(text, 'utf8').equals(out) && !/[\u0000-\u0008\u000e-\u001f]/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/**
 * Decrypts a value phpBorg stored encrypted. A value that is not shaped like one (legacy plain text)
 * is returned as is. Throws, without the value, when it looks encrypted but no key opens it.
 */
export function decryptPhpborgSecret(stored: string, appSecret: string): string {
  const s = stored.trim();
  if (s === '') return '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) return stored;
  const raw = Buffer.from(s, 'base64');
  if (raw.length < 32) return stored;
  const iv = raw.subarray(0, 16);
  const rest = raw.subarray(16);
  // body as raw bytes (OPENSSL_RAW_DATA), or as base64 text (openssl_encrypt's default output)
  const bodies = [rest];
  const restText = rest.toString('latin1');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(restText)) bodies.push(Buffer.from(restText, 'base64'));
  for (const key of phpborgKeys(appSecret)) {
    for (const body of bodies) {
      const text = tryDecrypt(key, iv, body);
      if (text !== null) return text;
    }
  }
  if (rest.length % 16 !== 0 && bodies.length === 1) return stored; // not a CBC ciphertext at all
  throw new Error('cannot decrypt smtp.password with the APP_SECRET of .env (was APP_SECRET changed since it was saved?)');
}

// ---------- resolving the SMTP settings ----------

const truthy = (s: string | undefined) => ['1', 'true', 'yes', 'on'].includes((s ?? '').trim().toLowerCase());

function security(s: string | undefined, port: number): SmtpSecurity {
  const t = (s ?? '').trim().toLowerCase();
  if (t === 'ssl' || t === 'smtps') return 'ssl';
  if (t === 'tls' || t === 'starttls') return 'tls';
  if (t === 'none' || t === '' || t === 'false') return t === '' && port === 465 ? 'ssl' : 'none';
  return 'none';
}

/**
 * The SMTP server and recipient. `prefs` are phpBorg's settings rows (null when its database is
 * down); `appSecret` is asked only when phpBorg's encrypted password must be opened.
 */
export function resolveSmtp(config: KeeperConfig, prefs: Map<string, string> | null, appSecret: () => string): SmtpResolution {
  const notifyTo = prefs?.get('notification.email')?.trim() || null;
  if (config.smtp) {
    const k = config.smtp;
    let password: string | null = null;
    if (k.password_file) {
      try {
        password = readFileSync(k.password_file, 'utf8').replace(/\r?\n$/, '');
      } catch (e) {
        return { ok: false, code: 'smtp_password_file', reason: `cannot read smtp.password_file ${k.password_file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}` };
      }
    }
    return {
      ok: true,
      smtp: {
        source: 'keeper',
        host: k.host,
        port: k.port,
        security: k.secure ? 'ssl' : 'none',
        username: k.username,
        password,
        from_email: k.from_email,
        from_name: k.from_name,
        to: k.to || notifyTo || k.from_email,
      },
    };
  }
  if (!prefs) return { ok: false, code: 'smtp_db_unreachable', reason: "phpBorg's database is unreachable, so its SMTP settings cannot be read (configure keeper's own smtp to mail anyway)" };
  if (prefs.has('smtp.enabled') && !truthy(prefs.get('smtp.enabled'))) return { ok: false, code: 'smtp_disabled', reason: 'SMTP is disabled in phpBorg (smtp.enabled)' };
  const host = prefs.get('smtp.host')?.trim();
  if (!host) return { ok: false, code: 'smtp_no_host', reason: 'no SMTP host is configured in phpBorg (smtp.host)' };
  const port = Number(prefs.get('smtp.port') ?? '587');
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, code: 'smtp_bad_port', reason: `smtp.port is not a port number: ${JSON.stringify(prefs.get('smtp.port'))}` };
  const username = prefs.get('smtp.username')?.trim() || null;
  let password: string | null = null;
  const stored = prefs.get('smtp.password');
  if (stored) {
    try {
      password = decryptPhpborgSecret(stored, appSecret());
    } catch (e) {
      return { ok: false, code: 'smtp_password', reason: errorMessage(e) };
    }
  }
  const from_email = prefs.get('smtp.from_email')?.trim() || username || '';
  if (!from_email) return { ok: false, code: 'smtp_no_sender', reason: 'no sender address is configured in phpBorg (smtp.from_email)' };
  return {
    ok: true,
    smtp: {
      source: 'phpborg',
      host,
      port,
      security: security(prefs.get('smtp.encryption'), port),
      username,
      password,
      from_email,
      from_name: prefs.get('smtp.from_name')?.trim() || 'phpBorg',
      to: notifyTo || from_email,
    },
  };
}

// ---------- sending ----------

export interface SendOptions {
  /** ms for connect, greeting and each socket wait; a dead server must not hold a job's listener long */
  timeoutMs?: number;
}

export async function sendMail(smtp: SmtpTarget, mail: OutgoingMail, opts: SendOptions = {}): Promise<{ messageId: string }> {
  const t = opts.timeoutMs ?? 15_000;
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.security === 'ssl',
    requireTLS: smtp.security === 'tls',
    auth: smtp.username ? { user: smtp.username, pass: smtp.password ?? '' } : undefined,
    connectionTimeout: t,
    greetingTimeout: t,
    socketTimeout: t,
  });
  try {
    const info = await transport.sendMail({
      from: { name: smtp.from_name, address: smtp.from_email },
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
    });
    return { messageId: String(info.messageId ?? '') };
  } finally {
    transport.close();
  }
}

/** A send failure as one line fit for the audit log: never a password, never the mail body. */
export function describeMailError(e: unknown, smtp: Pick<SmtpTarget, 'password'> | null): string {
  const err = e as { code?: string; responseCode?: number; message?: string };
  let msg = `${err.code ? `${err.code}: ` : ''}${errorMessage(e)}`;
  if (smtp?.password) msg = msg.split(smtp.password).join('[redacted]');
  return msg.slice(0, 500);
}
