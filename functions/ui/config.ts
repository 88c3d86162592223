// GET /api/ui/config (public): what the sign-in page needs before it has a token.
// GET /api/ui/session (admin): who the token belongs to (401/403 tell the pages where to go), and the
// install's time zone and language.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { installPrefs } from '../../runtime/locale.ts';

export function uiConfigHandler(c: Context<AppEnv>): Response {
  return c.json({ login_url: c.env.config.phpborg_api.login_url, token_storage_key: 'access_token' });
}

export async function uiSessionHandler(c: Context<AppEnv>): Promise<Response> {
  const u = c.var.user;
  // the install's zone: every time on the pages is shown in it, whatever the browser's zone
  const p = await installPrefs(c.env);
  return c.json({ username: u.username, email: u.email ?? null, roles: u.roles, expires_at: new Date(u.exp * 1000).toISOString(), timezone: p.timezone, language: p.language });
}
