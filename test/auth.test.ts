// Auth matrix and the error shape, through app.request() with real bindings on a temp install.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { accessToken, makeTempInstall, type TempInstall } from './support/runner.ts';

let t: TempInstall;
let runner: Runner;

before(async () => {
  t = makeTempInstall();
  runner = await createRunner(t.config, t.configPath, { services: false, log: () => {} });
});
after(async () => {
  await runner?.close();
  t?.cleanup();
});

async function get(path: string, token?: string) {
  const res = await runner.request(path, token === undefined ? {} : { headers: { authorization: token } });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string; fields?: string[] } } };
}

describe('auth', () => {
  test('no token → 401 with the error shape', async () => {
    const r = await get('/api/jobs');
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, 'unauthorized');
    assert.match(r.body.error!.message, /bearer/i);
  });

  test('garbage token → 401', async () => {
    const r = await get('/api/jobs', 'Bearer not.a.jwt');
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, 'invalid_token');
  });

  test('not a bearer scheme → 401', async () => {
    assert.equal((await get('/api/jobs', 'Basic YWRtaW46YWRtaW4=')).status, 401);
  });

  test('wrong secret → 401', async () => {
    const r = await get('/api/jobs', `Bearer ${await accessToken('some-other-secret')}`);
    assert.equal(r.status, 401);
    assert.equal(r.body.error?.code, 'invalid_token');
  });

  test('expired → 401', async () => {
    const r = await get('/api/jobs', `Bearer ${await accessToken(t.secret, { expiresIn: -60 })}`);
    assert.equal(r.status, 401);
    assert.match(r.body.error!.message, /expired|exp/i);
  });

  test('wrong audience → 401', async () => {
    assert.equal((await get('/api/jobs', `Bearer ${await accessToken(t.secret, { aud: 'someone-else' })}`)).status, 401);
  });

  test('wrong issuer → 401', async () => {
    assert.equal((await get('/api/jobs', `Bearer ${await accessToken(t.secret, { iss: 'evil' })}`)).status, 401);
  });

  test('valid but not admin → 403', async () => {
    const r = await get('/api/jobs', `Bearer ${await accessToken(t.secret, { roles: ['ROLE_USER'] })}`);
    assert.equal(r.status, 403);
    assert.equal(r.body.error?.code, 'forbidden');
  });

  test('admin → 200', async () => {
    const r = await get('/api/jobs', `Bearer ${await accessToken(t.secret)}`);
    assert.equal(r.status, 200);
  });

  test('health needs no token', async () => {
    const res = await runner.request('/api/health');
    assert.ok([200, 503].includes(res.status));
    const body = (await res.json()) as { checks: { name: string; status: string; latency_ms: number }[] };
    assert.deepEqual(body.checks.map((c) => c.name).sort(), ['database', 'http', 'install', 'ledger', 'redis', 'runner', 'storage']);
    for (const c of body.checks) assert.equal(typeof c.latency_ms, 'number');
    // the temp install points DB and Redis at closed ports: those fail, the rest pass
    const byName = Object.fromEntries(body.checks.map((c) => [c.name, c.status]));
    assert.equal(byName.runner, 'ok');
    assert.equal(byName.ledger, 'ok');
    assert.equal(byName.install, 'ok', 'no operation left the install half-changed');
    assert.equal(byName.database, 'error');
    assert.equal(res.status, 503);
    // anonymous callers learn no paths, versions or database errors; an admin sees them
    for (const c of body.checks as Record<string, unknown>[]) assert.ok(!('detail' in c) && !('error' in c), JSON.stringify(c));
    const full = await runner.request('/api/health', { headers: { authorization: `Bearer ${await accessToken(t.secret)}` } });
    const fb = (await full.json()) as { checks: { name: string; detail?: string; error?: string }[] };
    assert.match(fb.checks.find((c) => c.name === 'database')!.error ?? '', /\w/);
    assert.match(fb.checks.find((c) => c.name === 'storage')!.detail ?? '', /writable|created/);
    const nonAdmin = await runner.request('/api/health', { headers: { authorization: `Bearer ${await accessToken(t.secret, { roles: ['ROLE_USER'] })}` } });
    assert.ok(((await nonAdmin.json()) as { checks: Record<string, unknown>[] }).checks.every((c) => !('error' in c) && !('detail' in c)));
  });

  test('a new APP_SECRET in .env (e.g. after a restore) is picked up without restart', async () => {
    const envFile = join(t.config.paths.code, '.env');
    const old = readFileSync(envFile, 'utf8');
    const oldToken = `Bearer ${await accessToken(t.secret)}`;
    assert.equal((await get('/api/jobs', oldToken)).status, 200);
    writeFileSync(envFile, old.replace(t.secret, 'rotated-secret-value-xyz') + '# changed\n');
    try {
      assert.equal((await get('/api/jobs', oldToken)).status, 401);
      assert.equal((await get('/api/jobs', `Bearer ${await accessToken('rotated-secret-value-xyz')}`)).status, 200);
    } finally {
      writeFileSync(envFile, old);
    }
  });
});

describe('error shape', () => {
  test('404 uses {"error": {code, message}}', async () => {
    const r = await get('/api/no-such-route');
    assert.equal(r.status, 404);
    assert.equal(r.body.error?.code, 'not_found');
    assert.match(r.body.error!.message, /no-such-route/);
  });

  test('an unknown job is a 404 in the same shape', async () => {
    const r = await get('/api/jobs/nope', `Bearer ${await accessToken(t.secret)}`);
    assert.equal(r.status, 404);
    assert.equal(r.body.error?.code, 'not_found');
  });

  test('a validation error is a 422 naming the field', async () => {
    const r = await get('/api/jobs?limit=lots', `Bearer ${await accessToken(t.secret)}`);
    assert.equal(r.status, 422);
    assert.equal(r.body.error?.code, 'invalid_input');
    assert.match(r.body.error!.message, /limit/);
    assert.deepEqual(r.body.error?.fields, ['limit']);
  });
});
