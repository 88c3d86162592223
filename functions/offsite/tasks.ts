// Tasks offsite.push (copy one backup now, to one or every enabled target, ignoring the back-off)
// and offsite.test (write, read back, delete a small file). Helpers run them: the key file and
// rclone's configuration are readable by the helper's user, not necessarily by the runner's.
import * as v from 'valibot';
import { defineTask, TaskError } from '../../runtime/task.ts';
import { withKeeperTemp } from '../../runtime/temp.ts';
import { describeTarget, OffsiteError } from '../../runtime/offsite.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { getBackup } from '../../state/catalog.ts';
import { audit } from '../../state/audit.ts';
import { copyBackup, enabledTargets, findTarget, testTarget, type CopyOutcome } from './copy.ts';

const TargetName = v.pipe(v.string('expected a target name'), v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a target name'));

export const OffsitePushParams = v.strictObject({
  backup_id: v.pipe(v.number('expected a backup id'), v.integer(), v.minValue(1)),
  target: v.optional(v.nullable(TargetName), null),
});

export interface OffsitePushResult {
  backup_id: number;
  filename: string;
  copies: CopyOutcome[];
}

export const offsitePushTask = defineTask({
  name: 'offsite.push',
  params: OffsitePushParams,
  async run(ctx, p): Promise<OffsitePushResult> {
    const row = getBackup(ctx.ledger, p.backup_id);
    if (!row || row.status !== 'succeeded') throw new TaskError('not_found', `no finished backup ${p.backup_id}; keeper backup list shows the catalog`, 'offsite.push');
    const targets = p.target ? [findTarget(ctx.config, p.target)] : enabledTargets(ctx.config);
    if (targets.some((t) => t === null)) throw new TaskError('unknown_target', `no off-site target named ${JSON.stringify(p.target)} in the configuration`, 'offsite.push');
    if (!targets.length) throw new TaskError('no_targets', 'no enabled off-site target in the configuration ("offsite" in keeper.json)', 'offsite.push');
    const copies: CopyOutcome[] = [];
    for (const [i, t] of targets.entries()) {
      ctx.progress('offsite.copy', (100 * i) / targets.length, `Copying ${row.filename} to ${t!.name}`, { target: t!.name });
      const c = await copyBackup({ config: ctx.config, ledger: ctx.ledger, actor: ctx.actor, log: ctx.log, signal: ctx.signal, now: ctx.now }, row, t!);
      copies.push(c);
      ctx.progress('offsite.copy', (100 * (i + 1)) / targets.length, `${t!.name}: ${c.status}${c.error ? `: ${c.error}` : ''}`, { target: t!.name, status: c.status });
    }
    const failed = copies.filter((c) => c.status !== 'verified');
    if (failed.length) {
      throw new TaskError(
        failed.length === 1 ? `offsite_${failed[0].error_code ?? 'failed'}` : 'offsite_failed',
        failed.map((c) => `${c.target}: ${c.error}`).join('; '),
        'offsite.copy',
        { backup_id: row.id, copies },
      );
    }
    return { backup_id: row.id, filename: row.filename, copies };
  },
});

export const OffsiteTestParams = v.strictObject({ target: TargetName });

export const offsiteTestTask = defineTask({
  name: 'offsite.test',
  params: OffsiteTestParams,
  async run(ctx, p) {
    const t = findTarget(ctx.config, p.target);
    if (!t) throw new TaskError('unknown_target', `no off-site target named ${JSON.stringify(p.target)} in the configuration`, 'offsite.test');
    ctx.progress('offsite.test', 10, `Testing ${t.name} (${describeTarget(t)})`, { target: t.name });
    try {
      const r = await withKeeperTemp('offsite-test', (dir) => testTarget(t, dir), ctx.config.paths.state);
      audit(ctx.ledger, { actor: ctx.actor, action: 'offsite.test', target: t.name, outcome: 'succeeded', details: { ms: r.ms } });
      return r;
    } catch (e) {
      const code = e instanceof OffsiteError ? `offsite_${e.code}` : 'offsite_failed';
      audit(ctx.ledger, { actor: ctx.actor, action: 'offsite.test', target: t.name, outcome: 'failed', details: { code, error: errorMessage(e) } });
      throw new TaskError(code, `${t.name}: ${errorMessage(e)}`, 'offsite.test', { target: t.name });
    }
  },
});
