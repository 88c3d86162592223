// Admin guard: a phpBorg access token (HS256, APP_SECRET from the install's .env, iss phpborg,
// aud phpborg-api, not expired) whose roles include ROLE_ADMIN. Missing/invalid → 401, not admin → 403.
import { statSync } from 'node:fs';
import { createMiddleware } from 'hono/factory';
import { verify } from 'hono/jwt';
import type { KeeperConfig } from './config.ts';
import { envPath, readEnv } from './install.ts';
import type { AppEnv, TokenClaims } from './bindings.ts';
import type { Actor } from './task.ts';
import { HttpError } from './errors.ts';
import { errorMessage } from './error-message.ts';

export const TOKEN_ISSUER = 'phpborg';
export const TOKEN_AUDIENCE = 'phpborg-api';
export const ADMIN_ROLE = 'ROLE_ADMIN';

// Re-read when .env changes (a restore may bring back another APP_SECRET); keyed by file.
const secrets = new Map<string, { mtimeMs: number; size: number; secret: string }>();

/** APP_SECRET of the protected install, cached until .env's mtime or size changes. */
export function appSecret(config: KeeperConfig): string {
  const file = envPath(config);
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    secrets.delete(file);
    throw new Error(`cannot read phpBorg's .env at ${file}: ${errorMessage(e)}`);
  }
  const hit = secrets.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.secret;
  const secret = readEnv(config).APP_SECRET;
  secrets.set(file, { mtimeMs: st.mtimeMs, size: st.size, secret });
  return secret;
}

export function actorFromClaims(claims: TokenClaims): Actor {
  const n = typeof claims.sub === 'number' ? claims.sub : Number(claims.sub);
  return { id: Number.isSafeInteger(n) ? n : null, name: claims.username || String(claims.sub) };
}

/** A verifier's message may quote the token it was given: never send any part of it back. */
function withoutToken(message: string, token: string): string {
  let out = message;
  for (const part of [token, ...token.split('.')].filter((p) => p.length >= 4)) out = out.split(part).join('…');
  return out.length > 200 ? `${out.slice(0, 200)}…` : out;
}

/** Verifies a bearer token against the install's secret; throws HttpError 401/403. */
export async function verifyAdminToken(config: KeeperConfig, header: string | undefined): Promise<TokenClaims> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) throw new HttpError(401, 'unauthorized', 'missing bearer token: send "Authorization: Bearer <phpBorg access token>"');
  let secret: string;
  try {
    secret = appSecret(config);
  } catch (e) {
    // Without the secret nobody can be authenticated; say why without leaking more.
    throw new HttpError(503, 'auth_unavailable', `cannot verify tokens: ${errorMessage(e)}`);
  }
  let payload: Record<string, unknown>;
  try {
    payload = await verify(m[1], secret, { alg: 'HS256', iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE });
  } catch (e) {
    throw new HttpError(401, 'invalid_token', `invalid access token: ${withoutToken(errorMessage(e), m[1])}`);
  }
  if (typeof payload.exp !== 'number') throw new HttpError(401, 'invalid_token', 'invalid access token: no expiry (exp)');
  const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
  const claims: TokenClaims = {
    sub: typeof payload.sub === 'number' || typeof payload.sub === 'string' ? payload.sub : '',
    username: typeof payload.username === 'string' ? payload.username : String(payload.sub ?? ''),
    email: typeof payload.email === 'string' ? payload.email : undefined,
    roles,
    exp: payload.exp,
  };
  if (!roles.includes(ADMIN_ROLE)) throw new HttpError(403, 'forbidden', `administrator role (${ADMIN_ROLE}) required`);
  return claims;
}

/**
 * Middleware factory: sets c.var.user (claims) and c.var.actor ({id, name}). `allowQueryToken`
 * also accepts `?access_token=` — only for streams a browser opens with EventSource (no headers).
 */
export function adminGuard(opts: { allowQueryToken?: boolean } = {}) {
  return createMiddleware<AppEnv>(async (c, next) => {
    let header = c.req.header('authorization');
    const q = opts.allowQueryToken ? c.req.query('access_token') : undefined;
    if (!header && q) header = `Bearer ${q}`;
    const user = await verifyAdminToken(c.env.config, header);
    c.set('user', user);
    c.set('actor', actorFromClaims(user));
    await next();
  });
}

/** The admin guard of every route but health. */
export const requireAdmin = adminGuard();
