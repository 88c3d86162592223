// phpBorg's web API stand-in (unit phpborg-api): a health probe target and the sign-in endpoint.
// GET /api/health → 200 {"status":"ok"} when the database answers, api/public/index.php exists and
// api/public/HEALTH_FAIL does not (tests commit that file to make a deployment unhealthy); else 503.
// POST /api/auth/login {username,password} → phpBorg's token envelope, 401 otherwise.
// Usage: api.mjs CODE_DIR PORT
import { createServer } from 'node:http';
import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { readDotEnv, dbOptions, notifyReady, log } from './unit-env.mjs';

const [code, port] = process.argv.slice(2);

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
};

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...CORS });
  res.end(JSON.stringify(body));
}

// the .env is read per request: a restore or an update may change it under us
async function withDb(fn) {
  const conn = await mysql.createConnection(dbOptions(readDotEnv(code)));
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => {});
  }
}

function b64url(x) {
  return Buffer.from(x).toString('base64url');
}

function signJwt(claims, secret) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** stored as scrypt$<salt hex>$<key hex> by the sandbox's seed */
function verifyPassword(password, stored) {
  const [kind, salt, key] = String(stored).split('$');
  if (kind !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'hex');
  const got = scryptSync(password, Buffer.from(salt, 'hex'), want.length);
  return timingSafeEqual(want, got);
}

async function health(res) {
  const problems = [];
  if (!existsSync(join(code, 'api/public/index.php'))) problems.push('api/public/index.php is missing');
  if (existsSync(join(code, 'api/public/HEALTH_FAIL'))) problems.push('api/public/HEALTH_FAIL is present');
  try {
    await withDb((c) => c.query('SELECT 1'));
  } catch (e) {
    problems.push(`database: ${e.message}`);
  }
  if (problems.length) return send(res, 503, { status: 'error', problems });
  send(res, 200, { status: 'ok' });
}

async function login(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  let input;
  try {
    input = JSON.parse(body);
  } catch {
    return send(res, 400, { success: false, error: { code: 'BAD_REQUEST', message: 'expected a JSON body {username, password}' } });
  }
  if (typeof input?.username !== 'string' || typeof input?.password !== 'string') {
    return send(res, 400, { success: false, error: { code: 'BAD_REQUEST', message: 'expected {username, password}' } });
  }
  const rows = await withDb(async (c) => (await c.query('SELECT id, username, email, password, roles, active FROM users WHERE username = ?', [input.username]))[0]);
  const u = rows[0];
  if (!u || !u.active || !verifyPassword(input.password, u.password)) {
    return send(res, 401, { success: false, error: { code: 'INVALID_CREDENTIALS', message: 'Invalid username or password' } });
  }
  const roles = typeof u.roles === 'string' ? JSON.parse(u.roles) : u.roles;
  const now = Math.floor(Date.now() / 1000);
  const env = readDotEnv(code);
  const access = signJwt({ sub: String(u.id), username: u.username, email: u.email, roles, iss: 'phpborg', aud: 'phpborg-api', iat: now, exp: now + 3600 }, env.APP_SECRET);
  send(res, 200, {
    success: true,
    data: { access_token: access, refresh_token: randomBytes(32).toString('hex'), token_type: 'Bearer', expires_in: 3600, user: { id: u.id, username: u.username, email: u.email, roles } },
  });
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  const route = `${req.method} ${path}`;
  const done = (p) => p.catch((e) => send(res, 500, { success: false, error: { code: 'INTERNAL', message: e.message } }));
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS);
    return res.end();
  }
  if (route === 'GET /api/health') return done(health(res));
  if (route === 'POST /api/auth/login') return done(login(req, res));
  send(res, 404, { success: false, error: { code: 'NOT_FOUND', message: `no route ${route}` } });
});

server.listen(Number(port), '127.0.0.1', () => {
  notifyReady();
  log(`phpBorg API stand-in on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
