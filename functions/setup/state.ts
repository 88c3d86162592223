// Whether phpBorg is installed here, and the one-time setup token that guards the setup wizard while
// it is not.
//
// initialized ⇔ `<paths.code>/.env` exists and parses (DB_NAME, DB_USER, APP_SECRET present) AND a
// connection with its credentials opens its database (SELECT VERSION()). Anything less — no code dir,
// no .env, an incomplete .env, a database or user that does not exist — is "not initialized": the
// setup wizard may restore a backup onto it.
//
// The setup token: 32 random bytes (hex), made by the runner at start while the install is not
// initialized, printed once and written to `<paths.state>/setup-token` (0600, dir 0700) so that root
// can read it again. A new start makes a new token; a start on an initialized install removes the file.
// The wizard's routes compare it in constant time; once the install is initialized they answer 403
// whatever the token.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { readEnv } from '../../runtime/install.ts';
import { probeDatabase } from '../../runtime/probes.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export interface InstallState {
  initialized: boolean;
  /** why not, in one sentence (absent when initialized) */
  reason?: string;
}

export async function installState(config: KeeperConfig): Promise<InstallState> {
  let env;
  try {
    env = readEnv(config);
  } catch (e) {
    return { initialized: false, reason: errorMessage(e) };
  }
  const db = await probeDatabase(env);
  if (!db.ok) return { initialized: false, reason: `phpBorg's database does not answer: ${db.error}` };
  return { initialized: true };
}

export const isInitialized = async (config: KeeperConfig): Promise<boolean> => (await installState(config)).initialized;

export const setupTokenPath = (config: KeeperConfig): string => join(config.paths.state, 'setup-token');

/**
 * At runner start: when the install is not initialized, makes a new token, writes it 0600 and returns
 * it; when it is initialized, removes any old token file and returns null.
 */
export async function prepareSetupToken(config: KeeperConfig): Promise<{ token: string; file: string; reason: string } | null> {
  const file = setupTokenPath(config);
  const s = await installState(config);
  if (s.initialized) {
    await rm(file, { force: true });
    return null;
  }
  await mkdir(config.paths.state, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  await rm(file, { force: true });
  await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { token, file, reason: s.reason ?? 'not initialized' };
}

/** Whether `given` is the current setup token (constant-time; false when there is none). */
export async function checkSetupToken(config: KeeperConfig, given: string | undefined | null): Promise<boolean> {
  if (!given) return false;
  let stored: string;
  try {
    stored = (await readFile(setupTokenPath(config), 'utf8')).trim();
  } catch {
    return false;
  }
  if (!stored) return false;
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(stored), h(given.trim()));
}
