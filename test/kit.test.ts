// The emergency kit: downloaded by an admin (audited, text/plain attachment, passphrase and
// fingerprint inside), then its manual restore recipe is run AS WRITTEN — every "    $ " line,
// parsed into an argument array (no shell), with only the scratch dir WORK moved off /root — against
// an encrypted backup of the sandbox whose code, SSH keys and database were damaged afterwards.
// The restored tree and database must equal the originals.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { run, runOk, safeEnv } from '../runtime/exec.ts';
import { updateSettings } from '../state/settings.ts';
import { listAudit } from '../state/audit.ts';
import { codeExcluder } from '../functions/backup/sources.ts';
import { DEFAULT_RECIPE_VALUES, manualRecipe } from '../functions/kit/recipe.ts';

const PASSPHRASE = 'correct horse battery staple';

// ---------- a tiny interpreter for the recipe's shell subset, with argument arrays ----------

interface Parsed {
  argv: string[];
  stdin?: string;
  stdout?: string;
}

/** Words, '…', "…" (with $VAR), unquoted $VAR (split on blanks), \x, `< file`, `> file`. */
export function parseLine(line: string, vars: Map<string, string>, split = true): Parsed {
  const words: string[] = [];
  let cur: string | null = null;
  let redirect: '<' | '>' | null = null;
  const out: Parsed = { argv: [] };
  const push = () => {
    if (cur === null) return;
    if (redirect === '<') out.stdin = cur;
    else if (redirect === '>') out.stdout = cur;
    else words.push(cur);
    redirect = null;
    cur = null;
  };
  const expandAt = (i: number): [string, number] => {
    let name = '';
    let j = i + 1;
    if (line[j] === '{') {
      const end = line.indexOf('}', j);
      name = line.slice(j + 1, end);
      j = end + 1;
    } else {
      while (j < line.length && /[A-Za-z0-9_]/.test(line[j])) name += line[j++];
    }
    if (!name) return ['$', i + 1];
    if (!vars.has(name)) throw new Error(`recipe uses $${name} before setting it`);
    return [vars.get(name)!, j];
  };
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === ' ' || ch === '\t') {
      push();
      i++;
    } else if ((ch === '<' || ch === '>') && cur === null) {
      redirect = ch;
      i++;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in: ${line}`);
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let s = '';
      while (line[j] !== '"') {
        if (j >= line.length) throw new Error(`unclosed " in: ${line}`);
        if (line[j] === '\\' && '"\\$`'.includes(line[j + 1])) {
          s += line[j + 1];
          j += 2;
        } else if (line[j] === '$') {
          const [v, k] = expandAt(j);
          s += v;
          j = k;
        } else if (line[j] === '`') {
          throw new Error(`command substitution is not in the recipe's shell subset: ${line}`);
        } else s += line[j++];
      }
      cur = (cur ?? '') + s;
      i = j + 1;
    } else if (ch === '\\') {
      cur = (cur ?? '') + line[i + 1];
      i += 2;
    } else if (ch === '$') {
      const [v, k] = expandAt(i);
      if (!split) cur = (cur ?? '') + v;
      else {
        // field splitting of an unquoted expansion
        const parts = v.split(/[ \t]+/);
        parts.forEach((p, n) => {
          if (n > 0) push();
          if (p !== '' || n === 0) cur = (cur ?? '') + p;
        });
      }
      i = k;
    } else if (';|&(){}`'.includes(ch)) {
      throw new Error(`"${ch}" is not in the recipe's shell subset: ${line}`);
    } else {
      cur = (cur ?? '') + ch;
      i++;
    }
  }
  push();
  out.argv = words;
  return out;
}

// ---------- snapshots ----------

function tree(dir: string, exclude?: (rel: string, isDir: boolean) => boolean): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p);
      const st = lstatSync(p);
      if (exclude?.(rel, st.isDirectory())) continue;
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        walk(p);
      } else out.set(rel, `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

describe('emergency kit', () => {
  let sb: Sandbox;
  let runner: Runner;
  let token = '';
  let cnf = '';
  let scratch = '';

  const dump = async () =>
    runOk('mariadb-dump', [`--defaults-extra-file=${cnf}`, '--skip-dump-date', '--single-transaction', '--routines', '--triggers', '--events', '--hex-blob', sb.env.DB_NAME]);

  before(async () => {
    sb = await startSandbox();
    runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
    token = await sb.token();
    scratch = mkdtempSync(join(sb.dir, 'kit-test-'));
    cnf = join(scratch, 'root.cnf');
    writeFileSync(cnf, `[client]\nuser=root\nsocket=${sb.paths.mysqlSocket}\n`, { mode: 0o600 });
  });
  after(async () => {
    await runner?.close();
    await sb?.down();
  });

  test('the README carries the same recipe', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const recipe = manualRecipe(DEFAULT_RECIPE_VALUES);
    assert.ok(readme.includes(recipe.trimEnd()), 'README "Manual restore recipe" = manualRecipe(DEFAULT_RECIPE_VALUES)');
  });

  test('is admin-only', async () => {
    const anon = await runner.request('/api/phpborg-backup/settings/emergency-kit');
    assert.equal(anon.status, 401);
    const user = await runner.request('/api/phpborg-backup/settings/emergency-kit', { headers: { authorization: `Bearer ${await sb.token('ROLE_USER')}` } });
    assert.equal(user.status, 403);
  });

  test('its manual recipe, run as written, restores an encrypted backup', async () => {
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_encryption_passphrase: PASSPHRASE, backup_encryption_enabled: true });
    const exclude = codeExcluder(sb.config.exclude_dirs);
    const codeBefore = tree(sb.config.paths.code, exclude);
    const sshBefore = tree(sb.config.paths.ssh);
    const borgBefore = tree(sb.config.paths.ssh_borg);
    const dbBefore = await dump();
    assert.match(dbBefore, /CREATE TABLE `servers`/);

    const res = await runner.request('/api/phpborg-backup/create', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 202);
    const job = await runner.jobs.wait(((await res.json()) as { job_id: string }).job_id, 120_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const archive = job.result as { file: string; filename: string; encrypted: boolean };
    assert.equal(archive.encrypted, true);
    assert.equal(readFileSync(archive.file).subarray(0, 8).toString('latin1'), 'Salted__');

    // the kit
    const kitRes = await runner.request('/api/phpborg-backup/settings/emergency-kit', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(kitRes.status, 200);
    assert.match(kitRes.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(kitRes.headers.get('content-disposition') ?? '', /^attachment; filename="phpborg-emergency-kit-\d{4}-\d{2}-\d{2}\.txt"$/);
    // in the install's language (the sandbox's phpBorg is French), like the mails
    const kit = await kitRes.text();
    assert.match(kit, /KIT DE SECOURS/);
    assert.ok(kit.includes(`Phrase de passe : ${PASSPHRASE}`));
    const settings = (await (await runner.request('/api/phpborg-backup/settings', { headers: { authorization: `Bearer ${token}` } })).json()) as {
      backup_encryption_passphrase: { fingerprint: string };
    };
    assert.ok(kit.includes(`Empreinte :       ${settings.backup_encryption_passphrase.fingerprint}`), 'same fingerprint as Settings');
    assert.ok(kit.includes(`Dossier de stockage :   ${sb.config.paths.storage}`));
    assert.ok(kit.includes(archive.filename));
    assert.match(kit, /les tables créées dans la base après la sauvegarde restent/);
    // an English install gets it in English, with the same commands
    await sb.rootQuery(`USE \`${sb.env.DB_NAME}\`; UPDATE settings SET value = 'en' WHERE \`key\` = 'app.language';`);
    const kitEn = await (await runner.request('/api/phpborg-backup/settings/emergency-kit', { headers: { authorization: `Bearer ${token}` } })).text();
    await sb.rootQuery(`USE \`${sb.env.DB_NAME}\`; UPDATE settings SET value = 'fr' WHERE \`key\` = 'app.language';`);
    assert.ok(kitEn.includes(`Passphrase:  ${PASSPHRASE}`));
    assert.ok(kitEn.includes(`Storage directory: ${sb.config.paths.storage}`));
    assert.match(kitEn, /tables created in the database after the backup stay/);
    const commands = (k: string) => k.split('\n').filter((l) => l.startsWith('    $ '));
    assert.deepEqual(commands(kitEn), commands(kit));
    const audited = listAudit(runner.ledger, { action: 'settings.emergency_kit' }).items[0];
    assert.equal(audited.outcome, 'succeeded');
    assert.equal(audited.actor.name, 'admin');
    assert.ok(!JSON.stringify(audited).includes(PASSPHRASE), 'the passphrase is never audited');

    // damage the install after the backup
    writeFileSync(join(sb.config.paths.code, 'composer.json'), '{"broken": true}\n');
    writeFileSync(join(sb.config.paths.code, 'added-after-backup.php'), '<?php\n');
    const someSrc = [...codeBefore.keys()].find((k) => k.startsWith('src/') && codeBefore.get(k)!.startsWith('file'))!;
    unlinkSync(join(sb.config.paths.code, someSrc));
    const sshKey = [...sshBefore.keys()].find((k) => sshBefore.get(k)!.startsWith('file'))!;
    writeFileSync(join(sb.config.paths.ssh, sshKey), 'garbage\n');
    writeFileSync(join(sb.config.paths.ssh_borg, 'authorized_keys'), '');
    writeFileSync(join(sb.config.paths.sudoers, 'phpborg-added-later'), '# not in the backup\n');
    await sb.rootQuery(`USE \`${sb.env.DB_NAME}\`; DROP TABLE servers; UPDATE users SET email = CONCAT('mallory-', id, '@evil.test');`);
    assert.notEqual(await dump(), dbBefore);

    // run the recipe as written
    const lines = kit.split('\n').filter((l) => l.startsWith('    $ ')).map((l) => l.slice(6));
    assert.ok(lines.length > 20, 'the kit holds the recipe');
    const vars = new Map<string, string>();
    let cwd = scratch;
    const work = join(scratch, 'phpborg-restore');
    const transcript: string[] = [];
    for (const line of lines) {
      const assign = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (assign) {
        const words = parseLine(assign[2], vars, false).argv;
        assert.ok(words.length <= 1, `one value in ${line}`);
        // the only substitution: the scratch dir, off /root
        vars.set(assign[1], assign[1] === 'WORK' ? work : words[0] ?? '');
        continue;
      }
      const p = parseLine(line, vars);
      const [cmd, ...args] = p.argv;
      if (cmd === 'cd') {
        cwd = args[0];
        continue;
      }
      const r = await run(cmd, args, { cwd, env: safeEnv(), input: p.stdin ? readFileSync(p.stdin.startsWith('/') ? p.stdin : join(cwd, p.stdin)) : undefined, timeoutMs: 120_000 });
      transcript.push(`$ ${p.argv.join(' ')} → ${r.code}${r.stderr.trim() ? ` (${r.stderr.trim().slice(0, 300)})` : ''}`);
      assert.equal(r.code, 0, `"${line}" failed:\n${transcript.join('\n')}\n${r.stderr}`);
      if (p.stdout) writeFileSync(p.stdout.startsWith('/') ? p.stdout : join(cwd, p.stdout), r.stdout);
      if (cmd === 'sha256sum') assert.match(r.stdout, new RegExp(`${archive.filename}: OK`));
      // the one manual step the kit asks for: put the passphrase into the file just created
      if (cmd === 'install' && args.at(-1) === join(work, 'passphrase')) writeFileSync(args.at(-1)!, PASSPHRASE + '\n');
    }
    assert.ok(!existsSync(work), 'the recipe ends by deleting the scratch folder');

    // the restored install equals the original
    assert.deepEqual(tree(sb.config.paths.code, exclude), codeBefore);
    const sshAfter = tree(sb.config.paths.ssh);
    for (const [k, v] of sshBefore) assert.equal(sshAfter.get(k), v, `ssh/${k}`);
    assert.deepEqual(tree(sb.config.paths.ssh_borg), borgBefore, 'the phpborg-borg SSH dir is back');
    assert.ok(!existsSync(join(sb.config.paths.sudoers, 'phpborg-added-later')), 'as the restore does: phpborg-* files not in the backup are gone');
    assert.equal(await dump(), dbBefore);
    const active = await sb.systemctl('is-active', 'phpborg-scheduler', 'phpborg-worker@1');
    assert.equal(active.code, 0, 'phpBorg runs again');
    rmSync(`${sb.config.paths.code}.before-restore`, { recursive: true, force: true });
  });
});
