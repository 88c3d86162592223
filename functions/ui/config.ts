// GET /api/ui/config (public): what the sign-in page needs before it has a token.
// GET /api/ui/session (admin): who the token belongs to; 401/403 tell the pages where to go.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';

export function uiConfigHandler(c: Context<AppEnv>): Response {
  return c.json({ login_url: c.env.config.phpborg_api.login_url, token_storage_key: 'access_token' });
}

export function uiSessionHandler(c: Context<AppEnv>): Response {
  const u = c.var.user;
  return c.json({ username: u.username, email: u.email ?? null, roles: u.roles, expires_at: new Date(u.exp * 1000).toISOString() });
}
