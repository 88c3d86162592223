// POST /api/phpborg-backup/settings/test-email (admin): sends a test message with the SMTP settings
// notifications use, whether or not notifications are switched on; {"to": "…"} optionally names
// another recipient. The outcome is audited (notify.email); a failure answers 502 with the reason
// (never a password).
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, jsonBody } from '../../runtime/errors.ts';
import { notify } from './notify.ts';

export const TestEmailBody = v.object({
  to: v.optional(v.pipe(v.string('expected an email address'), v.trim(), v.email('expected an email address, e.g. admin@example.com'))),
});

export async function testEmailHandler(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, TestEmailBody);
  const actor = c.var.actor;
  const r = await notify(
    { config: c.env.config, ledger: c.env.ledger, phpborg: c.env.phpborg, now: () => c.env.clock.now() },
    { kind: 'test', at: c.env.clock.now(), from: '', who: c.var.user.email ?? actor.name },
    { actor, target: 'test-email', force: true, to: body.to },
  );
  if (r.status === 'sent') return c.json({ sent: true, to: r.to, subject: r.subject });
  throw new HttpError(502, 'mail_failed', `the test email could not be sent: ${r.reason}`, r.status === 'failed' && r.code ? { reason_code: r.code } : {});
}
