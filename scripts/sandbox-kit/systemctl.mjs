// A stand-in for systemctl inside a sandbox (containers have no systemd). Plain Node so it starts fast.
// Usage (through DIR/bin/systemctl): systemctl.mjs DIR VERB [--quiet] UNIT...
// Units come from DIR/sandbox.json, else from their unit file DIR/etc/systemd/system/<unit>.service
// (ExecStart, WorkingDirectory, Environment: what an installer writes); each runs detached in its own session, with a pidfile under
// DIR/run/units/ and its output in DIR/var/log/<unit>.log. Every call is logged to DIR/var/log/systemctl.log.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, linkSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const [dir, ...rest] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: systemctl.mjs DIR VERB [UNIT...]\n');
  process.exit(2);
}
const meta = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8'));
const unitsDir = join(dir, 'run/units');
const logDir = join(dir, 'var/log');
mkdirSync(unitsDir, { recursive: true });
mkdirSync(logDir, { recursive: true });

const flags = rest.filter((a) => a.startsWith('-'));
const [verb = '', ...names] = rest.filter((a) => !a.startsWith('-'));
const quiet = flags.includes('--quiet') || flags.includes('-q');
const startedAt = new Date().toISOString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TARGET = 'phpborg-workers.target';
const short = (name) => name.replace(/\.service$/, '');
const full = (name) => (name.endsWith('.target') ? name : `${name}.service`);

function workerCount() {
  try {
    const env = readFileSync(join(dir, 'opt/newphpborg/phpBorg/.env'), 'utf8');
    const m = /^\s*WORKER_POOL_SIZE\s*=\s*["']?(\d+)/m.exec(env);
    return m ? Number(m[1]) : 4;
  } catch {
    return 4;
  }
}

/** A unit file's ExecStart (split on blanks: no quoting), WorkingDirectory and Environment lines. */
function fromUnitFile(n) {
  let text;
  try {
    text = readFileSync(join(dir, 'etc/systemd/system', `${n}.service`), 'utf8');
  } catch {
    return null;
  }
  const spec = { argv: [], env: {} };
  for (const line of text.split('\n')) {
    const m = /^\s*(ExecStart|WorkingDirectory|Environment)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'ExecStart') spec.argv = m[2].trim().split(/\s+/);
    else if (m[1] === 'WorkingDirectory') spec.cwd = m[2].trim();
    else {
      const eq = m[2].indexOf('=');
      if (eq > 0) spec.env[m[2].slice(0, eq).trim()] = m[2].slice(eq + 1).trim();
    }
  }
  return spec.argv.length ? spec : null;
}

/** unit name → { name, spec, instance } or null when unknown */
function resolve(name) {
  const n = short(name);
  if (meta.units[n]) return { name: n, spec: meta.units[n], instance: '' };
  const file = fromUnitFile(n);
  if (file) return { name: n, spec: file, instance: '' };
  const at = n.indexOf('@');
  if (at > 0) {
    const tpl = meta.units[n.slice(0, at + 1)];
    const inst = n.slice(at + 1);
    if (tpl?.template && /^[1-9]\d{0,2}$/.test(inst)) return { name: n, spec: tpl, instance: inst };
  }
  return null;
}

/** expands the target into its workers; keeps unknown names so the verb can report them */
function expand(list) {
  const out = [];
  for (const n of list) {
    if (n === TARGET || n === 'phpborg-workers') {
      for (let i = 1; i <= workerCount(); i++) out.push(`phpborg-worker@${i}`);
    } else out.push(short(n));
  }
  return [...new Set(out)];
}

const pidFile = (unit) => join(unitsDir, `${unit}.pid`);
const lockFile = (unit) => join(unitsDir, `${unit}.lock`);

/** One systemctl at a time per unit (two callers starting a unit must not start it twice). */
async function withLock(unit, fn) {
  const file = lockFile(unit);
  // the pid goes in first, then link() makes the lock appear atomically, never empty
  const mine = `${file}.${process.pid}`;
  writeFileSync(mine, `${process.pid}\n`);
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        break;
      } catch {
        let holder = 0;
        try {
          holder = Number(readFileSync(file, 'utf8').trim());
        } catch {
          continue; // released meanwhile
        }
        if (!procStat(holder)) rmSync(file, { force: true }); // its holder died
        else await sleep(25);
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}
const notifyFile = (unit) => join(unitsDir, `${unit}.ready`);

function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], start: f[19] };
  } catch {
    return null;
  }
}

/** a process that exists, is not a zombie, and is the one we started (not a reused pid) */
function alive(rec) {
  const st = procStat(rec.pid);
  return !!st && st.state !== 'Z' && st.state !== 'X' && st.start === rec.start;
}

function readPid(unit) {
  try {
    return JSON.parse(readFileSync(pidFile(unit), 'utf8'));
  } catch {
    return null;
  }
}

function state(unit) {
  if (unit === TARGET || unit === 'phpborg-workers') {
    const ws = expand([TARGET]);
    return ws.every((w) => state(w) === 'active') ? 'active' : 'inactive';
  }
  const rec = readPid(unit);
  if (!rec) return 'inactive';
  return alive(rec) ? 'active' : 'failed';
}

function probe(opts) {
  return new Promise((res) => {
    const s = connect(opts);
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
    s.setTimeout(500, () => (s.destroy(), res(false)));
  });
}

async function ready(unit, spec, rec) {
  const deadline = Date.now() + (spec.start_timeout_s ?? 30) * 1000;
  while (Date.now() < deadline) {
    if (!alive(rec)) return false;
    const r = spec.ready ?? {};
    let ok = true;
    if (r.tcp) ok = ok && (await probe({ host: '127.0.0.1', port: r.tcp }));
    if (ok && r.socket) ok = await probe({ path: r.socket });
    if (ok && r.notify) ok = existsSync(notifyFile(unit));
    if (ok && !r.tcp && !r.socket && !r.notify) {
      await sleep(100);
      ok = alive(rec);
    }
    if (ok) return true;
    await sleep(40);
  }
  return false;
}

const start = (unit) => withLock(unit, () => startUnlocked(unit));
const stop = (unit) => withLock(unit, () => stopUnlocked(unit));

async function startUnlocked(unit) {
  const u = resolve(unit);
  if (state(unit) === 'active') return true;
  const spec = u.spec;
  rmSync(notifyFile(unit), { force: true });
  const log = openSync(join(logDir, `${unit}.log`), 'a');
  const argv = spec.argv.map((a) => a.replaceAll('%i', u.instance));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', LANG: process.env.LANG ?? 'C.UTF-8', ...(spec.env ?? {}), SANDBOX_DIR: dir, UNIT_NAME: unit, NOTIFY_FILE: notifyFile(unit) };
  let child;
  try {
    child = spawn(argv[0], argv.slice(1), { cwd: spec.cwd ?? dir, env, detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const pid = await new Promise((res) => {
    child.once('spawn', () => res(child.pid));
    child.once('error', () => res(null));
  });
  if (!pid) {
    process.stderr.write(`Failed to start ${full(unit)}: cannot execute ${argv[0]}\n`);
    return false;
  }
  child.unref();
  const st = procStat(pid);
  const rec = { pid, start: st?.start ?? '', started_at: new Date().toISOString() };
  writeFileSync(pidFile(unit), JSON.stringify(rec) + '\n');
  if (await ready(unit, spec, rec)) return true;
  process.stderr.write(`Job for ${full(unit)} failed because the control process exited with error code.\nSee "${join(logDir, unit + '.log')}" for details.\n`);
  return false;
}

function signal(rec, sig) {
  try {
    process.kill(-rec.pid, sig);
  } catch {
    try {
      process.kill(rec.pid, sig);
    } catch {
      /* already gone */
    }
  }
}

async function stopUnlocked(unit) {
  const u = resolve(unit);
  const rec = readPid(unit);
  if (rec && alive(rec)) {
    signal(rec, 'SIGTERM');
    const deadline = Date.now() + (u.spec.stop_timeout_s ?? 15) * 1000;
    while (alive(rec) && Date.now() < deadline) await sleep(25);
    if (alive(rec)) {
      signal(rec, 'SIGKILL');
      while (alive(rec)) await sleep(25);
    }
  }
  rmSync(pidFile(unit), { force: true });
  rmSync(notifyFile(unit), { force: true });
  return true;
}

function status(unit) {
  const s = state(unit);
  const rec = readPid(unit);
  const lines = [`● ${full(unit)} - phpBorg sandbox unit ${unit}`, `     Loaded: loaded (${join(dir, 'etc/systemd/system', full(unit.replace(/@\d+$/, '@')))})`];
  lines.push(`     Active: ${s}${s === 'active' ? ` (running) since ${rec.started_at}` : ''}`);
  if (s === 'active') lines.push(`   Main PID: ${rec.pid}`);
  return lines.join('\n') + '\n';
}

async function main() {
  const units = expand(names);
  const unknown = units.filter((u) => u !== TARGET && !resolve(u));
  switch (verb) {
    case 'start':
    case 'stop':
    case 'restart': {
      if (!units.length) return fail(`Too few arguments.`, 1);
      if (unknown.length) return fail(`Failed to ${verb} ${unknown.map(full).join(' ')}: Unit ${full(unknown[0])} not found.`, 5);
      if (verb !== 'start') await Promise.all(units.map(stop));
      if (verb === 'stop') return 0;
      // the database and Redis first, like After= ordering
      const first = units.filter((u) => u === 'mariadb' || u === 'redis-server');
      const okFirst = await Promise.all(first.map(start));
      const ok = await Promise.all(units.filter((u) => !first.includes(u)).map(start));
      return [...okFirst, ...ok].every(Boolean) ? 0 : 1;
    }
    case 'is-active':
    case 'is-failed': {
      if (!names.length) return fail('Too few arguments.', 1);
      const states = names.map((n) => (n === TARGET || resolve(n) ? state(short(n)) : 'inactive'));
      if (!quiet) process.stdout.write(states.join('\n') + '\n');
      if (verb === 'is-failed') return states.some((s) => s === 'failed') ? 0 : 1;
      return states.every((s) => s === 'active') ? 0 : 3;
    }
    case 'status': {
      if (unknown.length) return fail(`Unit ${full(unknown[0])} could not be found.`, 4);
      for (const u of units) process.stdout.write(status(u));
      return units.every((u) => state(u) === 'active') ? 0 : 3;
    }
    case 'reset-failed':
      for (const u of units) if (state(u) === 'failed') rmSync(pidFile(u), { force: true });
      return 0;
    case 'daemon-reload':
    case 'enable':
    case 'disable':
      return 0;
    case 'is-enabled':
      if (!quiet) process.stdout.write(names.map(() => 'enabled').join('\n') + '\n');
      return 0;
    default:
      return fail(`Unknown command verb '${verb}'.`, 1);
  }
}

function fail(msg, code) {
  process.stderr.write(msg + '\n');
  return code;
}

const code = await main().catch((e) => fail(String(e?.stack ?? e), 1));
appendFileSync(join(logDir, 'systemctl.log'), `${startedAt} ${verb} ${names.join(' ')}${flags.length ? ' ' + flags.join(' ') : ''} -> ${code === 0 ? 'ok' : `exit ${code}`}\n`);
process.exit(code);
