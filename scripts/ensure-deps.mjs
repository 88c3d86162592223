// Installs the project's dependencies from its own lock file when they are missing or stale, so that
// `npm start`, `npm test` and `npm run bench` work on a fresh clone with nothing run before them.
// "Stale" is decided by the lock file's content, not its date: a checkout or a copy that touches
// package-lock.json without changing it must not cost a reinstall (minutes, with better-sqlite3
// compiled from source where no prebuilt binary exists). The hash of the lock installed is recorded
// in node_modules after each install.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
const recorded = join(root, 'node_modules', '.keeper-lock-sha256');

const lockHash = () => createHash('sha256').update(readFileSync(lock)).digest('hex');

/**
 * With no recorded hash (an install made before it was recorded, or by a plain `npm ci`), npm's own
 * record of what it installed is compared with the lock, package by package.
 */
function matchesInstalled() {
  if (!existsSync(installed)) return false;
  try {
    const want = JSON.parse(readFileSync(lock, 'utf8')).packages ?? {};
    const have = JSON.parse(readFileSync(installed, 'utf8')).packages ?? {};
    for (const [path, p] of Object.entries(want)) {
      if (path === '') continue;
      const h = have[path];
      if (!h) {
        if (p.optional) continue; // another platform's binary
        return false;
      }
      if (h.version !== p.version) return false;
    }
    return Object.keys(have).every((path) => path in want);
  } catch {
    return false;
  }
}

const hash = lockHash();
const current = existsSync(recorded) && existsSync(installed) && readFileSync(recorded, 'utf8').trim() === hash;
if (!current) {
  if (matchesInstalled()) {
    writeFileSync(recorded, hash + '\n');
  } else {
    console.error('phpborg-keeper: installing dependencies (npm ci)…');
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error('phpborg-keeper: npm ci failed; see the output above');
      process.exit(r.status ?? 1);
    }
    writeFileSync(recorded, hash + '\n');
  }
}
