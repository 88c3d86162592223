// keeper settings get [KEY] | set KEY VALUE | set-passphrase [--passphrase-file F]
// The passphrase never goes on a command line: from a file (or "-" for stdin), or a no-echo prompt.
import { readFile } from 'node:fs/promises';
import { CliError, usageError, type CliContext, type CliTopGroup } from './framework.ts';
import { readEnv } from '../../runtime/install.ts';
import { readSettingsTable } from '../../runtime/mariadb.ts';
import { audit } from '../../state/audit.ts';
import {
  ensureSeeded, parseSettingText, PASSPHRASE_KEY, publicSettings, SETTING_KEYS, SettingsError, updateSettings, type PublicSettings,
} from '../../state/settings.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { storagePolicy } from '../../runtime/storage-path.ts';

async function seeded(ctx: CliContext): Promise<void> {
  await ensureSeeded(ctx.ledger(), async () => readSettingsTable(readEnv(ctx.config())), storagePolicy(ctx.config()));
}

/**
 * A refused change, audited like the API's (settings.update / rejected). The message never holds
 * the passphrase (state/settings.ts leaves its value out), and nothing else of the input is kept.
 */
function rejected(ctx: CliContext, e: SettingsError): CliError {
  audit(ctx.ledger(), { actor: ctx.actor, action: 'settings.update', target: e.key, outcome: 'rejected', details: { error: e.message } });
  return new CliError('invalid_setting', e.message, { key: e.key }, 2);
}

function apply(ctx: CliContext, patch: Record<string, unknown>): string[] {
  try {
    const changed = updateSettings(ctx.ledger(), ctx.config().paths.storage, patch, new Date(), storagePolicy(ctx.config()));
    if (changed.length) audit(ctx.ledger(), { actor: ctx.actor, action: 'settings.update', target: changed.join(','), outcome: 'succeeded', details: { changed } });
    return changed;
  } catch (e) {
    if (e instanceof SettingsError) throw rejected(ctx, e);
    throw e;
  }
}

/** Reads a line from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    if (!stdin.isTTY) return reject(new CliError('no_tty', 'no terminal to ask on: use --passphrase-file FILE (or - for stdin)', {}, 2));
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let buf = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('cancelled', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readPassphrase(file: string | undefined): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    } catch (e) {
      throw new CliError('unreadable', `cannot read the passphrase file ${file}: ${errorMessage(e)}`, {}, 2);
    }
    // one trailing newline is the file's, not the passphrase's
    return text.replace(/\r?\n$/, '');
  }
  const a = await promptHidden('New backup passphrase: ');
  const b = await promptHidden('Repeat it: ');
  if (a !== b) throw new CliError('mismatch', 'the two passphrases differ; nothing changed');
  return a;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function renderSettings(s: PublicSettings & { changed?: string[] }, ctx: CliContext): void {
  for (const k of SETTING_KEYS) {
    const v = s[k];
    if (k === PASSPHRASE_KEY) {
      const p = v as PublicSettings['backup_encryption_passphrase'];
      ctx.print(`${k.padEnd(30)} ${p.set ? `set (fingerprint ${p.fingerprint})` : 'not set'}`);
    } else ctx.print(`${k.padEnd(30)} ${String(v)}`);
  }
  if (s.changed) ctx.print(s.changed.length ? `changed: ${s.changed.join(', ')}` : 'nothing changed');
}

export const settingsGroup: CliTopGroup = {
  commands: [
    {
      name: 'get',
      summary: 'show the settings (the passphrase only as set / fingerprint)',
      usage: `keeper settings get [KEY] [--json]\n  keys: ${SETTING_KEYS.join(', ')}`,
      positionals: { max: 1 },
      async run(ctx, { positionals }) {
        await seeded(ctx);
        const s = await publicSettings(ctx.ledger(), ctx.config().paths.storage);
        const key = positionals[0];
        if (key === undefined) return s;
        if (!(SETTING_KEYS as string[]).includes(key)) throw usageError(`unknown setting ${key}; known: ${SETTING_KEYS.join(', ')}`);
        return { key, value: s[key as keyof PublicSettings] };
      },
      render(r, ctx) {
        const o = r as Record<string, unknown>;
        if ('key' in o && 'value' in o) ctx.print(typeof o.value === 'object' ? JSON.stringify(o.value) : String(o.value));
        else renderSettings(o as PublicSettings, ctx);
      },
    },
    {
      name: 'set',
      summary: 'change one setting (not the passphrase: see set-passphrase)',
      usage: `keeper settings set KEY VALUE [--json]\n  e.g. keeper settings set backup_retention_count 5\n  keys: ${SETTING_KEYS.filter((k) => k !== PASSPHRASE_KEY).join(', ')}`,
      positionals: { min: 2, max: 2 },
      async run(ctx, { positionals }) {
        const [key, text] = positionals;
        if (key === PASSPHRASE_KEY) {
          throw usageError('the passphrase is never given on the command line (other users can read it there): keeper settings set-passphrase [--passphrase-file F]');
        }
        await seeded(ctx);
        let value: unknown;
        try {
          value = parseSettingText(key, text);
        } catch (e) {
          if (e instanceof SettingsError) throw rejected(ctx, e);
          throw e;
        }
        const changed = apply(ctx, { [key]: value });
        return { ...(await publicSettings(ctx.ledger(), ctx.config().paths.storage)), changed };
      },
      render: (r, ctx) => renderSettings(r as PublicSettings & { changed: string[] }, ctx),
    },
    {
      name: 'set-passphrase',
      summary: 'set the backup encryption passphrase (asked without echo, or read from a file)',
      usage:
        'keeper settings set-passphrase [--passphrase-file FILE] [--enable] [--json]\n' +
        '  --passphrase-file FILE  read it from FILE ("-" = stdin); one trailing newline is dropped\n' +
        '  --enable                also turn encryption on',
      options: { 'passphrase-file': { type: 'string' }, enable: { type: 'boolean' } },
      positionals: { max: 0 },
      async run(ctx, { values }) {
        await seeded(ctx);
        const file = typeof values['passphrase-file'] === 'string' ? values['passphrase-file'] : undefined;
        const passphrase = await readPassphrase(file);
        const patch: Record<string, unknown> = { [PASSPHRASE_KEY]: passphrase };
        if (values.enable === true) patch.backup_encryption_enabled = true;
        if (passphrase === '') throw rejected(ctx, new SettingsError(PASSPHRASE_KEY, 'expected at least 8 characters'));
        const changed = apply(ctx, patch);
        return { ...(await publicSettings(ctx.ledger(), ctx.config().paths.storage)), changed };
      },
      render: (r, ctx) => renderSettings(r as PublicSettings & { changed: string[] }, ctx),
    },
  ],
};
