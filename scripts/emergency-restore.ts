// scripts/emergency-restore [BACKUP_ID|FILE|NAME] [--yes] [--passphrase-file F] [--accept-db-change] [--config FILE] [--from TARGET]
// For the day the web UI is dead: no runner, MariaDB stopped or its database dropped, code damaged,
// .env gone. Must run as root. Lists the backups from the ledger (read-only) or, when the ledger is
// missing or corrupt, from the sidecars; shows the chosen one; asks for the passphrase (no echo) and
// for YES; then functions/emergency/run.ts restores everything and a health table is printed.
// Exit status: 0 only when the restore succeeded and every health check passes.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type KeeperConfig } from '../runtime/config.ts';
import { isEncrypted } from '../archive/index.ts';
import { sizeHuman } from '../state/catalog.ts';
import { getSettings } from '../state/settings.ts';
import { openLedger } from '../state/ledger.ts';
import { foundFromFile, listFromLedger, listFromSidecars, probeLedger, storageDir, type FoundBackup, type LedgerState } from '../functions/emergency/catalog.ts';
import { emergencyRestore } from '../functions/emergency/run.ts';
import { setTempStateDir } from '../runtime/temp.ts';
import { cliActor, PROJECT_ROOT } from './cli/framework.ts';
import { errorMessage } from '../runtime/error-message.ts';
import { findTarget } from '../functions/offsite/copy.ts';
import { pullArchive } from '../functions/offsite/remote.ts';
import { noteText } from '../functions/backup/auto-notes.ts';

const RULE = '━'.repeat(60);
const out = (l = '') => process.stdout.write(l + '\n');
const err = (l: string) => process.stderr.write(l + '\n');

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
const fail = (message: string, code = 1) => new Exit(code, message);
/** --json: the outcome (or the error) as the last line on stdout */
let json = false;
let pulled: unknown = null;

const USAGE = `Usage: sudo scripts/emergency-restore [BACKUP_ID|FILE|NAME] [--yes] [--passphrase-file F] [--config FILE]
  BACKUP_ID            a catalog id (needs a readable ledger)
  FILE                 an archive path
  NAME                 (part of) an archive file name as listed, e.g. 2025-01-24-143022 (digits that are
                       no backup id are taken as part of a name too)
  --yes                do not ask to type YES
  --passphrase-file F  passphrase of an encrypted archive (first line of F)
  --accept-db-change   the backup's .env may name another DB_NAME / DB_USER than the live .env
  --config FILE        keeper configuration (default: $KEEPER_CONFIG, /etc/phpborg-keeper/keeper.json)
  --json               the last line on stdout is one JSON object: the outcome, or {"error": {code, message}}
  --from TARGET        first pull NAME (default: the newest complete archive) from that off-site target
                       of keeper.json into the storage dir, checked against its sidecars`;

function banner(): void {
  out('╔══════════════════════════════════════════════════════════╗');
  out('║       🚨 phpBorg Emergency Restore System 🚨             ║');
  out('╚══════════════════════════════════════════════════════════╝');
  out('');
}

/** Like `keeper`: --config, else KEEPER_CONFIG, else the system's, else the demo's (./var/demo). */
function configFile(given: string | undefined): string {
  const explicit = given ?? (process.env.KEEPER_CONFIG || undefined);
  if (explicit) {
    if (!existsSync(explicit)) throw fail(`❌ No keeper configuration at ${explicit}: pass --config FILE`, 2);
    return resolve(explicit);
  }
  const candidates = ['/etc/phpborg-keeper/keeper.json', join(PROJECT_ROOT, 'var', 'demo', 'keeper.json')];
  const f = candidates.find((c) => existsSync(c));
  if (!f) throw fail(`❌ No keeper configuration at ${candidates.join(' or ')}: pass --config FILE`, 2);
  return f;
}

function readPassphraseFile(f: string): string {
  let text: string;
  try {
    text = readFileSync(f, 'utf8');
  } catch (e) {
    throw fail(`❌ Cannot read --passphrase-file ${f}: ${errorMessage(e)}`, 2);
  }
  const p = text.split(/\r?\n/)[0];
  if (!p) throw fail(`❌ --passphrase-file ${f} is empty`, 2);
  return p;
}

/** Reads a line from the terminal without echoing it. */
async function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw fail('❌ The backup is encrypted: give --passphrase-file F (no terminal to ask on)', 2);
  process.stdout.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((res, rej) => {
    let s = '';
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          process.stdout.write('\n');
          return res(s);
        }
        if (ch === '\u0003') {
          done();
          process.stdout.write('\n');
          return rej(fail('Cancelled.', 130));
        }
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else s += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on('data', onData);
  });
}

async function ask(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw fail('❌ Not a terminal: give the backup and --yes on the command line', 2);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await rl.question(prompt)).trim();
  } finally {
    rl.close();
  }
}

function listBackups(items: FoundBackup[]): void {
  out('📦 Available Backups (newest first):');
  out(RULE);
  items.forEach((b, i) => {
    const id = b.id !== null ? `id ${b.id}` : 'sidecar';
    out(
      `${String(i + 1).padStart(2)}. ${b.filename.padEnd(58)} ${sizeHuman(b.size_bytes).padStart(10)}  ${b.created_at.slice(0, 19).replace('T', ' ')}  ` +
        `[${b.backup_type}]  ${b.phpborg_version ?? '?'}  ${b.encrypted ? '🔒 encrypted' : 'plain'}  (${id})`,
    );
  });
  out(RULE);
  out('');
}

function showBackup(b: FoundBackup): void {
  const md = b.metadata;
  out(`📦 Selected backup: ${b.filename}`);
  out('');
  out('📋 Backup Information:');
  out(RULE);
  out(`  Version:   ${b.phpborg_version ?? '?'} (commit: ${b.git_commit?.slice(0, 12) ?? '?'})`);
  out(`  Date:      ${b.created_at}`);
  out(`  Size:      ${sizeHuman(b.size_bytes)}${md ? ` (content ${sizeHuman(md.total_size_bytes)}, ${md.files_count} files, database ${sizeHuman(md.database_size_bytes)})` : ''}`);
  out(`  Encrypted: ${b.encrypted ? 'Yes' : 'No'}`);
  out(`  Type:      ${b.backup_type}`);
  if (md?.created_by) out(`  Created by: ${md.created_by}`);
  if (md?.notes) out(`  Notes:     ${noteText(md.notes)}`);
  if (md && Object.keys(md.table_row_counts).length) {
    out(`  Tables:    ${Object.entries(md.table_row_counts).map(([t, n]) => `${t} ${n}`).join(', ')}`);
  }
  out(`  File:      ${b.file}`);
  out(RULE);
  out('');
}

/** The backup named on the command line, or chosen from the list. */
async function choose(arg: string | undefined, items: FoundBackup[], ledger: LedgerState): Promise<FoundBackup> {
  if (arg === undefined) {
    if (!items.length) throw fail('❌ No backups found');
    const choice = await ask("Select backup number (or 'q' to quit): ");
    if (choice === 'q') throw fail('Cancelled.', 0);
    const n = Number(choice);
    if (!/^\d+$/.test(choice) || n < 1 || n > items.length) throw fail('❌ Invalid selection');
    return items[n - 1];
  }
  if (/^\d+$/.test(arg)) {
    const b = ledger.state === 'ok' ? items.find((x) => x.id === Number(arg)) : undefined;
    if (b) return b;
    // digits that are no id may be part of a name ("20250124", "143022")
    const named = items.filter((x) => x.filename.includes(arg));
    if (named.length === 1) return named[0];
    if (named.length > 1) throw fail(`❌ "${arg}" is no backup id and matches ${named.length} backups: ${named.map((h) => h.filename).join(', ')}`);
    if (ledger.state !== 'ok') {
      throw fail(`❌ The ledger is ${ledger.state}, so backup ids are unknown, and no file name contains "${arg}": give the file name (or its date part) as listed above`);
    }
    throw fail(`❌ Backup not found: ${arg} (no complete backup with that id whose file still exists, and no file name contains it)`);
  }
  if (arg.includes('/') || existsSync(arg)) {
    const file = resolve(arg);
    if (!existsSync(file)) throw fail(`❌ Backup file not found: ${file}`);
    const listed = items.find((x) => resolve(x.file) === file);
    if (listed) return listed;
    const side = await foundFromFile(file);
    if (side) return side;
    // an archive without sidecar (copied elsewhere in a disaster): restorable, checked against its
    // own size, manifest and, encrypted, its passphrase; nothing recorded is compared
    return {
      id: null, filename: basename(file), file, size_bytes: statSync(file).size, created_at: '?', backup_type: '?', phpborg_version: null, git_commit: null,
      encrypted: await isEncrypted(file).catch(() => false), sha256: null, mac: null, key_check: null, metadata: null, source: 'sidecar',
    };
  }
  const hits = items.filter((x) => x.filename.includes(arg));
  if (hits.length === 0) throw fail(`❌ Backup not found: ${arg}`);
  if (hits.length > 1) throw fail(`❌ "${arg}" matches ${hits.length} backups: ${hits.map((h) => h.filename).join(', ')}`);
  return hits[0];
}

function storedPassphrase(ledger: LedgerState, config: KeeperConfig): string | null {
  if (ledger.state !== 'ok') return null;
  const db = openLedger(ledger.file, { readonly: true });
  try {
    return getSettings(db, config.paths.storage).backup_encryption_passphrase;
  } catch {
    return null;
  } finally {
    db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { yes: { type: 'boolean' }, 'passphrase-file': { type: 'string' }, 'accept-db-change': { type: 'boolean' }, config: { type: 'string' }, from: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw fail(`❌ ${errorMessage(e)}\n${USAGE}`, 2);
  }
  if (args.values.help) {
    out(USAGE);
    return 0;
  }
  if (args.positionals.length > 1) throw fail(`❌ Give at most one backup\n${USAGE}`, 2);
  banner();
  if (process.getuid?.() !== 0) throw fail('❌ This script must be run as root (sudo scripts/emergency-restore …)');

  const cfgPath = configFile(args.values.config);
  let config: KeeperConfig;
  try {
    config = loadConfig(cfgPath);
    setTempStateDir(config.paths.state);
  } catch (e) {
    throw fail(`❌ ${errorMessage(e)}`, 2);
  }
  const passFromFile = args.values['passphrase-file'] ? readPassphraseFile(args.values['passphrase-file']) : null;

  // the catalog: the ledger read directly, or the sidecars
  const ledger = probeLedger(config);
  const storage = storageDir(config, ledger);
  json = !!args.values.json;
  let pick = args.positionals[0];
  if (args.values.from !== undefined) {
    // the machine lost its storage: fetch the archive from off-site before anything else
    const target = findTarget(config, args.values.from);
    if (!target) throw fail(`❌ No off-site target named ${JSON.stringify(args.values.from)} in ${cfgPath}`, 2);
    out(`☁️  Pulling ${pick ?? 'the newest archive'} from ${target.name}...`);
    const db = ledger.state === 'ok' ? openLedger(ledger.file, { readonly: true }) : null;
    try {
      const p = await pullArchive(target, pick ?? null, storage, config.paths.state, { ledger: db });
      pulled = p;
      out(`   ${p.reused ? 'already here' : 'pulled'}: ${p.file} (${sizeHuman(p.size_bytes)}, SHA-256 checked against its sidecars)`);
      pick = p.file;
    } catch (e) {
      throw fail(`❌ Cannot pull from ${target.name}: ${errorMessage(e)}; nothing was changed`);
    } finally {
      db?.close();
    }
    out('');
  }
  let items: FoundBackup[];
  if (ledger.state === 'ok') {
    items = await listFromLedger(ledger.file);
    out(`Catalog: ledger ${ledger.file}`);
  } else {
    items = await listFromSidecars(storage);
    out(ledger.state === 'missing'
      ? `Catalog: no ledger at ${ledger.file}; backups found through their sidecars in ${storage}`
      : `Catalog: the ledger ${ledger.file} is corrupt (${ledger.error}); backups found through their sidecars in ${storage}`);
  }
  out('');
  if (pick === undefined || items.length) listBackups(items);
  const backup = await choose(pick, items, ledger);
  showBackup(backup);

  // passphrase: the file, else the stored one, else asked without echo
  let passphrase: string | null = null;
  const encrypted = await isEncrypted(backup.file).catch((e: Error) => {
    throw fail(`❌ Cannot read ${backup.file}: ${e.message}`);
  });
  if (encrypted) {
    passphrase = passFromFile ?? storedPassphrase(ledger, config);
    if (!passphrase) {
      out('🔒 This backup is encrypted.');
      passphrase = await askHidden('Passphrase: ');
      if (!passphrase) throw fail('❌ No passphrase given; nothing was changed');
    }
  }

  out('⚠️  WARNING: This will:');
  out('  1. Verify the archive (nothing changes if it is damaged or the passphrase is wrong)');
  out(`  2. Back up the current installation to: ${storage}/phpborg-backup-…-pre_emergency_restore.tar.gz`);
  out('  3. Stop all phpBorg services');
  out('  4. Restore the database (ALL CURRENT DATA WILL BE LOST)');
  out('  5. Replace all code, configuration and SSH keys');
  out('  6. Restart all services and check their health');
  out('');
  if (!args.values.yes) {
    const confirm = await ask("Continue with restore? Type 'YES' to confirm: ");
    if (confirm !== 'YES') throw fail('Cancelled. Nothing was changed.', 1);
  }
  out('');
  out('🔄 Starting emergency restore...');
  out('');

  const ac = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts === 1) {
      err('⚠️  Interrupt: stopping after the current step (Ctrl-C again to abort at once)');
      ac.abort(new Error('interrupted'));
    } else process.exit(130);
  });
  process.on('SIGHUP', () => {}); // a closed terminal must not cut a restore in half

  const r = await emergencyRestore({
    config,
    configPath: cfgPath,
    backup,
    passphrase,
    ledger,
    storage,
    acceptDbChange: !!args.values['accept-db-change'],
    actor: { id: null, name: `emergency:${cliActor().name.replace(/^cli:/, '')}` },
    signal: ac.signal,
    ui: {
      step: (n, total, key, text) => out(`[${n}/${total}] ${key}: ${text}...`),
      detail: (t) => out(`      ${t}`),
    },
  });

  if (r.health.length) {
    out('');
    out('🔍 Health Check:');
    out(RULE);
    for (const c of r.health) {
      const name = c.name.startsWith('unit:') ? c.name.slice(5) : c.name === 'http' ? 'HTTP probe' : c.name === 'database' ? 'Database' : c.name === 'redis' ? 'Redis' : c.name;
      out(`${c.ok ? '✓' : '✗'} ${name.padEnd(28)} ${c.ok ? (c.detail ?? 'OK') : `FAILED: ${c.error ?? ''}`}`);
    }
    out(RULE);
  }
  out('');
  if (r.ok) {
    out('✅ Emergency restore completed!');
    out(`   ${r.message}`);
  } else if (r.nothing_changed) {
    out(`❌ Emergency restore stopped: ${r.message}; nothing was changed`);
  } else {
    out(`❌ Emergency restore FAILED: ${r.message}`);
    if (r.restore?.install_state) out(`   ${r.restore.install_state}`);
  }
  if (r.safety) {
    out('');
    out('💾 Backup of the previous installation:');
    out(`   ${r.safety.file}${r.safety.database_skipped ? `\n   (files only — the database was not included: ${r.safety.database_skipped})` : ''}`);
  }
  if (r.ledger_note) out(`📒 ${r.ledger_note}`);
  if (r.ok) {
    out('');
    out('📝 Next steps:');
    out('  1. Check logs: sudo journalctl -u phpborg-scheduler -f');
    out('  2. Access the web interface');
    out('  3. Verify data integrity');
  }
  if (json) {
    out(JSON.stringify({ ok: r.ok, message: r.message, nothing_changed: r.nothing_changed, file: backup.file, pulled, safety: r.safety ?? null, health: r.health }));
  }
  return r.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 100).unref();
  },
  (e) => {
    if (e instanceof Exit) {
      (e.code === 0 ? out : err)(e.message);
      if (json && e.code !== 0) out(JSON.stringify({ error: { code: e.code === 2 ? 'usage' : 'failed', message: e.message.replace(/^❌ /, '') } }));
      process.exit(e.code);
    }
    err(`❌ ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
