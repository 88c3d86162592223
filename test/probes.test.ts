// The health probes against real services: a password-protected Redis of the test's own, and an HTTP
// endpoint that redirects before it answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisPing } from '../runtime/redis-ping.ts';
import { probeHttp } from '../runtime/probes.ts';
import { freePort } from '../scripts/sandbox-kit/meta.ts';

const PASSWORD = 'pa ss"word$with*spaces';
let redis: ChildProcess;
let port: number;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keeper-probes-'));
  port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', PASSWORD, '--save', '', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await redisPing({ host: '127.0.0.1', port, password: PASSWORD }).then(() => true, () => false);
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the test Redis did not start');
});

after(() => {
  redis.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('Redis PING: the right password passes; a wrong or missing one fails with Redis’s own error', async () => {
  await redisPing({ host: '127.0.0.1', port, password: PASSWORD });
  await assert.rejects(redisPing({ host: '127.0.0.1', port, password: 'wrong' }), /WRONGPASS/);
  await assert.rejects(redisPing({ host: '127.0.0.1', port }), /NOAUTH/);
});

test('Redis PING: nothing listening is an error, not a hang', async () => {
  const closed = await freePort();
  await assert.rejects(redisPing({ host: '127.0.0.1', port: closed, timeoutMs: 2000 }), /ECONNREFUSED/);
});

test('HTTP probe: redirects are followed, the final status decides', async () => {
  const server: Server = createServer((req, res) => {
    if (req.url === '/old') res.writeHead(301, { location: '/health' }).end();
    else if (req.url === '/health') res.writeHead(200).end('ok');
    else res.writeHead(503).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const ok = await probeHttp(`${base}/old`);
    assert.equal(ok.ok, true, ok.error);
    assert.equal(ok.detail, 'HTTP 200');
    const down = await probeHttp(`${base}/down`);
    assert.equal(down.ok, false);
    assert.match(down.error!, /answered HTTP 503/);
  } finally {
    server.close();
  }
});
