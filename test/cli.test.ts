// The keeper CLI framework: --help everywhere, --json's last line is one object, exit statuses,
// status against a real sandbox, jobs show.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commands } from '../scripts/cli/index.ts';
import { isGroup, loadModule } from '../scripts/cli/framework.ts';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { makeTempInstall, type TempInstall } from './support/runner.ts';
import { spawnOut } from './support/install.ts';

const KEEPER = join(PROJECT_ROOT, 'scripts', 'keeper');

/** keeper as an administrator runs it, with no KEEPER_CONFIG unless given. */
const keeper = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnOut(KEEPER, args, { env: { ...process.env, KEEPER_CONFIG: '', ...env } });
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown> & { error?: { code: string; message: string } };

let sb: Sandbox;
let t: TempInstall;
before(async () => {
  t = makeTempInstall();
  sb = await startSandbox();
});
after(async () => {
  await sb?.down();
  t?.cleanup();
});

describe('keeper CLI', () => {
  test('--help: every command has a usage line; the CLI answers --help at each level', async () => {
    for (const e of commands) {
      const m = await loadModule(e);
      const cmds = isGroup(m) ? m.commands : [m];
      for (const c of cmds) assert.match(c.usage, /^keeper \S/, `${m.name} ${c.name}: usage must start with "keeper …"`);
    }
    const calls = [['--help'], ['jobs', '--help'], ['jobs', 'show', '--help'], ['status', '--help']];
    for (const a of calls) {
      const r = await keeper(a);
      assert.equal(r.code, 0, `keeper ${a.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: keeper/);
    }
  });

  test('usage errors: exit 2 and, with --json, one error object as the last line', async () => {
    const r = await keeper(['--json', 'no-such-command']);
    assert.equal(r.code, 2);
    assert.equal(lastJson(r.stdout).error?.code, 'usage');
    const o = await keeper(['--config', t.configPath, 'jobs', 'show', '--bogus', 'x', '--json']);
    assert.equal(o.code, 2);
    assert.match(lastJson(o.stdout).error!.message, /bogus/);
  });

  test('no configuration is a clear error', async () => {
    const r = await keeper(['status', '--json'], { KEEPER_CONFIG: '/nonexistent/keeper.json' });
    assert.equal(r.code, 2);
    const e = lastJson(r.stdout).error!;
    assert.equal(e.code, 'config');
    assert.match(e.message, /nonexistent\/keeper\.json/);
  });

  test('status on a healthy sandbox: exit 0, versions, units, storage', async () => {
    const r = await keeper(['--config', sb.info.config, 'status', '--json']);
    const s = lastJson(r.stdout) as { ok: boolean; versions: { phpborg: string | null }; units: { unit: string; active: boolean }[]; checks: { name: string; ok: boolean }[]; ledger: { schema_version: number }; storage: { writable: boolean } };
    assert.equal(r.code, 0, JSON.stringify(s.checks) + r.stderr);
    assert.equal(s.ok, true);
    assert.ok(s.versions.phpborg);
    assert.ok(s.units.length >= 2 && s.units.every((u) => u.active));
    assert.ok(s.checks.every((c) => c.ok));
    assert.ok(s.ledger.schema_version >= 1);
    assert.equal(s.storage.writable, true);
    // the human form
    const h = await keeper(['--config', sb.info.config, 'status']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /phpborg-worker@1\s+active/);
  });

  test("status fails while phpBorg's own API answers 503", async () => {
    const flag = join(sb.config.paths.code, 'api', 'public', 'HEALTH_FAIL');
    writeFileSync(flag, 'unhealthy\n');
    try {
      const r = await keeper(['--config', sb.info.config, 'status', '--json']);
      assert.equal(r.code, 1, r.stdout);
      const http = (lastJson(r.stdout) as { checks: { name: string; ok: boolean; error?: string }[] }).checks.find((c) => c.name === 'http');
      assert.equal(http?.ok, false);
      assert.match(String(http?.error), /503/);
    } finally {
      rmSync(flag, { force: true });
    }
  });

  test('a reader that goes away (keeper backup list | head) ends the output quietly', async () => {
    const child = spawn(KEEPER, ['--config', sb.info.config, 'backup', 'list'], { env: { ...process.env, KEEPER_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // like head: read nothing, close the pipe at once
    child.stdout.destroy();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|at .*\.ts:\d+/);
  });

  test('status on a broken install: exit 1, still one JSON object', async () => {
    const r = await keeper(['--config', t.configPath, 'status', '--json']);
    assert.equal(r.code, 1);
    const s = lastJson(r.stdout) as { ok: boolean; checks: { name: string; ok: boolean }[] };
    assert.equal(s.ok, false);
    assert.equal(s.checks.find((c) => c.name === 'database')?.ok, false);
  });

  test('a task run from the CLI is a job in the ledger; jobs show/list find it', async () => {
    const env = { KEEPER_TEST_TASKS: '1' };
    const run = await keeper(['--config', t.configPath, 'test', 'run', 'test.ticks', '--params', '{"ms":200,"steps":2}', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const { job_id } = lastJson(run.stdout) as { job_id: string };
    assert.match(run.stderr, /\[100%\] test\.tick: tick 2 of 2/); // plain progress lines off a TTY
    const show = await keeper(['--config', t.configPath, 'jobs', 'show', job_id, '--events', '--json']);
    assert.equal(show.code, 0);
    const j = lastJson(show.stdout) as { status: string; actor: { name: string }; events: { type: string }[] };
    assert.equal(j.status, 'succeeded');
    assert.match(j.actor.name, /^cli:/);
    assert.deepEqual(j.events.map((e) => e.type), ['progress', 'progress', 'result']);
    const list = await keeper(['--config', t.configPath, 'jobs', 'list']);
    assert.match(list.stdout, new RegExp(job_id));
    const missing = await keeper(['--config', t.configPath, 'jobs', 'show', 'nope', '--json']);
    assert.equal(missing.code, 1);
    assert.equal(lastJson(missing.stdout).error?.code, 'not_found');
    const failed = await keeper(['--config', t.configPath, 'test', 'run', 'test.fail', '--json'], env);
    assert.equal(failed.code, 1);
    const fe = lastJson(failed.stdout).error as unknown as { code: string; job_id: string; step: string };
    assert.equal(fe.code, 'test_failure');
    assert.equal(fe.step, 'test.before_failure');
  });
});
