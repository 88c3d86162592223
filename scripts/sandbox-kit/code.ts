// phpBorg's code: a git checkout shaped like the real one (api/public/index.php, src/, bin/, install/,
// migrations/, frontend/, composer.json + composer.lock), with a bare origin two commits ahead
// (A adds migration 004, B changes the frontend). Installed HEAD is tagged v1.2.3, origin's tip v1.3.0.
import { mkdirSync, writeFileSync, symlinkSync, readdirSync, lstatSync, chmodSync, openSync, writeSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { runOk, safeEnv } from '../../runtime/exec.ts';
import { APPLIED_MIGRATIONS, INSTALL_DATA, INSTALL_SCHEMA, NEW_MIGRATION } from './schema.ts';
import { ENV_TEMPLATE } from './env.ts';
import { SUDOERS, unitFileTexts } from './system-files.ts';

const MiB = 1024 * 1024;

function put(root: string, rel: string, text: string | Buffer, mode?: number): void {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  if (mode !== undefined) chmodSync(file, mode);
}

const VENDOR_PACKAGES: { name: string; classes: number; bin?: string }[] = [
  { name: 'symfony/console', classes: 40, bin: 'console' },
  { name: 'symfony/process', classes: 12 },
  { name: 'symfony/yaml', classes: 10, bin: 'yaml-lint' },
  { name: 'monolog/monolog', classes: 30 },
  { name: 'firebase/php-jwt', classes: 8 },
  { name: 'predis/predis', classes: 45 },
  { name: 'vlucas/phpdotenv', classes: 15 },
  { name: 'phpmailer/phpmailer', classes: 6 },
  { name: 'psr/log', classes: 6 },
  { name: 'doctrine/dbal', classes: 50 },
  { name: 'phpunit/phpunit', classes: 25, bin: 'phpunit' },
];

function phpClass(ns: string, name: string, i: number): string {
  return `<?php\n\ndeclare(strict_types=1);\n\nnamespace ${ns};\n\n/**\n * ${name}: part of the ${ns} package (sandbox stand-in #${i}).\n */\nfinal class ${name}\n{\n    public function __construct(private array $options = [])\n    {\n    }\n\n    public function handle(string $input): string\n    {\n        return sprintf('%s:%d:%s', self::class, ${i}, $input);\n    }\n}\n`;
}

function writeVendor(code: string): void {
  const installed: object[] = [];
  for (const pkg of VENDOR_PACKAGES) {
    const [vendor, project] = pkg.name.split('/');
    const ns = `${cap(vendor)}\\${cap(project)}`;
    const base = `vendor/${pkg.name}`;
    put(code, `${base}/composer.json`, JSON.stringify({ name: pkg.name, type: 'library', license: 'MIT', autoload: { 'psr-4': { [`${ns}\\`]: 'src/' } } }, null, 2) + '\n');
    put(code, `${base}/LICENSE`, `Copyright (c) ${pkg.name} authors\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software.\n`);
    put(code, `${base}/README.md`, `# ${pkg.name}\n\nVendored by composer.\n`);
    for (let i = 0; i < pkg.classes; i++) put(code, `${base}/src/${i % 3 === 0 ? 'Component/' : ''}Class${i}.php`, phpClass(ns, `Class${i}`, i));
    if (pkg.bin) {
      put(code, `${base}/bin/${pkg.bin}`, `#!/usr/bin/env php\n<?php\nrequire __DIR__ . '/../../../autoload.php';\n`, 0o755);
      mkdirSync(join(code, 'vendor/bin'), { recursive: true });
      symlinkSync(`../${pkg.name}/bin/${pkg.bin}`, join(code, 'vendor/bin', pkg.bin));
    }
    installed.push({ name: pkg.name, version: 'v6.4.0', type: 'library' });
  }
  put(code, 'vendor/autoload.php', `<?php\n\nrequire_once __DIR__ . '/composer/autoload_real.php';\n\nreturn ComposerAutoloaderInit::getLoader();\n`);
  put(code, 'vendor/composer/autoload_real.php', `<?php\n\nclass ComposerAutoloaderInit\n{\n    public static function getLoader() { return null; }\n}\n`);
  put(code, 'vendor/composer/installed.json', JSON.stringify({ packages: installed }, null, 2) + '\n');
}

const cap = (s: string) => s.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());

function writeTracked(code: string): void {
  put(code, '.gitignore', ['/.env', '/.install-credentials', '/vendor/', '/releases/', '/var/', '/frontend/dist/', '/frontend/node_modules/', ''].join('\n'));
  put(code, 'README.md', '# phpBorg\n\nCentralised BorgBackup management (sandbox copy).\n');
  put(code, 'composer.json', JSON.stringify({ name: 'phpborg/phpborg', type: 'project', require: { php: '>=8.2', 'symfony/console': '^6.4', 'monolog/monolog': '^3.5', 'firebase/php-jwt': '^6.10', 'predis/predis': '^2.2' }, autoload: { 'psr-4': { 'PhpBorg\\': 'src/' } } }, null, 4) + '\n');
  put(code, 'composer.lock', JSON.stringify({ 'content-hash': 'c0ffee', packages: VENDOR_PACKAGES.map((p) => ({ name: p.name, version: 'v6.4.0' })) }, null, 4) + '\n');
  put(code, '.env.example', ENV_TEMPLATE + 'APP_TIMEZONE=Europe/Paris\n');
  put(code, 'install/templates/.env.template', ENV_TEMPLATE);
  put(code, 'install/schema.sql', INSTALL_SCHEMA);
  put(code, 'install/data.sql', INSTALL_DATA);
  put(code, 'install/install.sh', '#!/bin/sh\n# phpBorg installer (sandbox copy: never run)\nexit 1\n', 0o755);
  for (const [name, text] of Object.entries(unitFileTexts())) {
    put(code, `install/systemd/${name}`, text);
    put(code, `systemd/${name}`, text);
  }
  for (const [name, text] of Object.entries(SUDOERS)) put(code, `install/sudoers.d/${name}`, text);
  put(code, 'api/public/index.php', `<?php\n\ndeclare(strict_types=1);\n\nrequire dirname(__DIR__, 2) . '/vendor/autoload.php';\n\n(new PhpBorg\\Api\\Kernel())->handle($_SERVER);\n`);
  for (let i = 0; i < 4; i++) put(code, `api/src/Controller/Controller${i}.php`, phpClass('PhpBorg\\Api\\Controller', `Controller${i}`, i));
  for (const b of ['phpborg', 'worker', 'scheduler']) put(code, `bin/${b}`, `#!/usr/bin/env php\n<?php\nrequire dirname(__DIR__) . '/vendor/autoload.php';\n// phpBorg ${b}\n`, 0o755);
  const areas = ['Controller', 'Service', 'Repository', 'Entity', 'Command', 'Security'];
  for (const area of areas) for (let i = 0; i < 5; i++) put(code, `src/${area}/${area}${i}.php`, phpClass(`PhpBorg\\${area}`, `${area}${i}`, i));
  put(code, 'src/Kernel.php', phpClass('PhpBorg', 'Kernel', 0));
  for (const [f, sql] of Object.entries(APPLIED_MIGRATIONS)) put(code, `migrations/${f}`, sql);
  put(code, 'frontend/package.json', JSON.stringify({ name: 'phpborg-frontend', version: '1.2.3', private: true, type: 'module', scripts: { build: 'node build.mjs' } }, null, 2) + '\n');
  put(code, 'frontend/package-lock.json', JSON.stringify({ name: 'phpborg-frontend', version: '1.2.3', lockfileVersion: 3, requires: true, packages: { '': { name: 'phpborg-frontend', version: '1.2.3' } } }, null, 2) + '\n');
  put(
    code,
    'frontend/build.mjs',
    `// Builds dist/ from src/ (no dependencies, so \`npm ci\` works offline).
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/assets', { recursive: true });
const app = readFileSync('src/app.js', 'utf8');
writeFileSync('dist/assets/app.js', app);
writeFileSync('dist/index.html', readFileSync('src/index.html', 'utf8').replace('<!--APP-->', '<script type="module" src="/assets/app.js"></script>'));
console.log('built dist/index.html and dist/assets/app.js');
`,
  );
  put(code, 'frontend/src/index.html', '<!doctype html>\n<html lang="fr">\n<head><meta charset="utf-8"><title>phpBorg</title></head>\n<body><div id="app"></div><!--APP--></body>\n</html>\n');
  put(code, 'frontend/src/app.js', "document.getElementById('app').textContent = 'phpBorg 1.2.3';\n");
}

function writeUntracked(code: string, env: string, credentials: string): void {
  put(code, '.env', env, 0o640);
  chmodSync(join(code, '.env'), 0o640);
  // the installer's note of the admin and DB passwords, in clear: owner-only
  put(code, '.install-credentials', credentials, 0o600);
  writeVendor(code);
  for (let i = 0; i < 20; i++) put(code, `var/cache/prod/container${i}.php`, `<?php // compiled container cache ${i}\n${'x'.repeat(512)}\n`);
  put(code, 'var/log/prod.log', '[2024-01-01] app.INFO: started\n');
  for (let i = 0; i < 10; i++) put(code, `frontend/node_modules/leftover-pkg/lib/file${i}.js`, `module.exports = ${i};\n`);
}

function du(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of readdirSync(path)) total += du(join(path, e));
  return total;
}

function writeRandom(file: string, bytes: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; left -= MiB) writeSync(fd, randomBytes(Math.min(MiB, left)));
  } finally {
    closeSync(fd);
  }
}

/** Pads vendor/ (compressible PHP-ish text) and releases/ (random binaries) up to `sizeMiB` in all. */
function pad(code: string, sizeMiB: number): void {
  const left = sizeMiB * MiB - du(code);
  if (left <= 0) return;
  const vendorPad = Math.floor(left * 0.2);
  const chunk = phpClass('Vendor\\Padding', 'Blob', 0);
  const perFile = 64 * 1024;
  for (let i = 0, done = 0; done < vendorPad; i++, done += perFile) {
    put(code, `vendor/phpborg/agent-assets/data/blob${i}.php`, chunk.repeat(Math.ceil(perFile / chunk.length)).slice(0, Math.min(perFile, vendorPad - done)));
  }
  const release = left - vendorPad;
  const per = 64 * MiB;
  for (let i = 0, done = 0; done < release; i++, done += per) writeRandom(join(code, `releases/phpborg-agent-1.2.${i}-amd64.bin`), Math.min(per, release - done));
}

async function git(code: string, args: string[]): Promise<string> {
  return runOk('git', args, { cwd: code, env: safeEnv({ GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' }) });
}

export interface CodeInput {
  code: string;
  origin: string;
  env: string;
  /** .install-credentials' text */
  credentials: string;
  sizeMiB: number;
}

export async function buildCode(c: CodeInput): Promise<void> {
  mkdirSync(c.code, { recursive: true });
  writeTracked(c.code);
  await git(c.code, ['init', '-q', '-b', 'master']);
  await git(c.code, ['config', 'user.name', 'phpBorg Release Bot']);
  await git(c.code, ['config', 'user.email', 'release@phpborg.local']);
  await git(c.code, ['config', 'commit.gpgsign', 'false']);
  await git(c.code, ['add', '-A']);
  await git(c.code, ['commit', '-q', '-m', 'Release 1.2.3']);
  await git(c.code, ['tag', 'v1.2.3']);
  // commit A: a new migration that alters a table
  put(c.code, `migrations/${NEW_MIGRATION.file}`, NEW_MIGRATION.sql);
  await git(c.code, ['add', 'migrations']);
  await git(c.code, ['commit', '-q', '-m', 'Add creation and update times to servers']);
  // commit B: the frontend changes
  put(c.code, 'frontend/src/app.js', "document.getElementById('app').textContent = 'phpBorg 1.3.0 — now with server dates';\n");
  put(c.code, 'frontend/src/index.html', '<!doctype html>\n<html lang="fr">\n<head><meta charset="utf-8"><title>phpBorg 1.3</title></head>\n<body><div id="app"></div><!--APP--></body>\n</html>\n');
  await git(c.code, ['commit', '-q', '-am', 'Frontend: show when servers were added']);
  await git(c.code, ['tag', 'v1.3.0']);
  await runOk('git', ['init', '-q', '--bare', '-b', 'master', c.origin], { env: safeEnv() });
  await git(c.code, ['remote', 'add', 'origin', c.origin]);
  await git(c.code, ['push', '-q', '-u', 'origin', 'master', '--tags']);
  await git(c.code, ['reset', '-q', '--hard', 'v1.2.3']);
  writeUntracked(c.code, c.env, c.credentials);
  await runOk(process.execPath, ['build.mjs'], { cwd: join(c.code, 'frontend') });
  pad(c.code, c.sizeMiB);
}

/** bytes under the code dir, .git included (for sizing the database) */
export const codeBytes = du;
