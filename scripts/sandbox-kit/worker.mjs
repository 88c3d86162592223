// A phpBorg worker stand-in (unit phpborg-worker@N): takes job ids from the Redis list phpborg:jobs,
// marks the `jobs` row running, works a little, writes an `archives` row (phpBorg's columns: nom,
// repo_id, dur, nfiles, …; its nom starts with job<ID>-) and marks the job completed.
// SIGTERM finishes the current job, then exits (BLPOP waits at most 250 ms, so that is prompt).
// It starts light (the crash tests restart the workers at every step): a small RESP client, and
// mysql2 loaded with the first job.
// Usage: worker.mjs CODE_DIR INSTANCE
import { redisClient } from './resp.mjs';
import { readDotEnv, dbOptions, notifyReady, log } from './unit-env.mjs';

const [code, instance = '1'] = process.argv.slice(2);
const QUEUE = 'phpborg:jobs';
const env = readDotEnv(code);
let stopping = false;
let waiting = false;

const redis = redisClient({ host: env.REDIS_HOST || '127.0.0.1', port: Number(env.REDIS_PORT || 6379), password: env.REDIS_PASSWORD || undefined });
let pool = null;
const db = async () => (pool ??= (await import('mysql2/promise')).default.createPool({ ...dbOptions(env), connectionLimit: 1 }));

process.on('SIGTERM', () => {
  stopping = true;
  // not connected: nothing can be in flight, leave now
  if (waiting && !redis.connected) process.exit(0);
});
process.on('SIGINT', () => process.emit('SIGTERM'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function handle(id) {
  const conn = await db();
  const [rows] = await conn.query('SELECT id, type, payload FROM jobs WHERE id = ?', [id]);
  if (!rows.length) {
    log(`job ${id} not found; dropped`);
    return;
  }
  await conn.query("UPDATE jobs SET status = 'running', started_at = NOW(), worker_id = ?, attempts = attempts + 1 WHERE id = ?", [`worker-${instance}`, id]);
  const t0 = Date.now();
  await sleep(50 + Math.floor(Math.random() * 150));
  let serverId = null;
  try {
    const payload = rows[0].payload;
    serverId = (typeof payload === 'string' ? JSON.parse(payload) : payload)?.server_id ?? null;
  } catch {
    /* payload is free-form */
  }
  if (serverId === null) {
    const [s] = await conn.query('SELECT id FROM servers ORDER BY id LIMIT 1');
    serverId = s[0]?.id ?? null;
  }
  const name = `job${id}-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}`;
  const size = 1_000_000 + Math.floor(Math.random() * 9_000_000);
  await conn.query(
    "INSERT INTO archives (repo_id, server_id, nom, archive_id, backup_config, dur, start, end, osize, csize, dsize, nfiles) VALUES (?, ?, ?, SHA2(?, 256), 'backup', ?, FROM_UNIXTIME(?), NOW(), ?, ?, ?, ?)",
    [serverId, serverId, name, name, (Date.now() - t0) / 1000, Math.floor(t0 / 1000), size, Math.floor(size * 0.6), Math.floor(size * 0.1), 100 + Math.floor(Math.random() * 900)],
  );
  await conn.query("UPDATE jobs SET status = 'completed', progress = 100, completed_at = NOW(), output = ? WHERE id = ?", [`archive ${name} created by worker ${instance}`, id]);
  log(`job ${id} completed (archive ${name})`);
}

notifyReady();
log(`worker ${instance} started (pid ${process.pid})`);
let redisError = null;
while (!stopping) {
  waiting = true;
  let item = null;
  try {
    item = await redis.command('BLPOP', QUEUE, '0.25');
    if (redisError) log('redis: connected again');
    redisError = null;
  } catch (e) {
    // said once, not at every retry while Redis is away
    if (e.message !== redisError) log(`redis: ${e.message}`);
    redisError = e.message;
    await sleep(500);
  }
  waiting = false;
  if (!item) continue;
  const id = item[1];
  try {
    await handle(id);
  } catch (e) {
    log(`job ${id} failed: ${e.message}`);
    try {
      await (await db()).query("UPDATE jobs SET status = 'failed', error = ?, completed_at = NOW() WHERE id = ?", [String(e.message).slice(0, 1000), id]);
    } catch {
      // the database is away: give the job back so it is not lost
      await redis.command('LPUSH', QUEUE, id).catch(() => {});
      await sleep(1000);
    }
  }
}
log(`worker ${instance} stopping`);
redis.disconnect();
await pool?.end().catch(() => {});
process.exit(0);
