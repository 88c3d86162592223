// keeper offsite list|push|pull|test — off-site targets from the command line. push and test run as
// tasks through the helper (same job rows and audit log as the API); list and pull run here, since
// on a new machine they come before anything else exists.
import { CliError, runTaskFromCli, usageError, type CliContext, type CliTopGroup } from './framework.ts';
import type { KeeperConfig, OffsiteTarget } from '../../runtime/config.ts';
import { TaskError } from '../../runtime/task.ts';
import { OffsiteError } from '../../runtime/offsite.ts';
import { sizeHuman } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { findTarget } from '../../functions/offsite/copy.ts';
import { listRemote, pullArchive, type PullResult, type RemoteArchive } from '../../functions/offsite/remote.ts';
import type { OffsitePushResult } from '../../functions/offsite/tasks.ts';

export function targetArg(config: KeeperConfig, name: string | undefined): OffsiteTarget {
  if (!name) throw usageError('which target? give the name of one of "offsite" in keeper.json');
  const t = findTarget(config, name);
  if (!t) {
    const known = config.offsite.map((x) => x.name);
    throw new CliError('unknown_target', `no off-site target named ${JSON.stringify(name)}; configured: ${known.length ? known.join(', ') : 'none'}`, {}, 2);
  }
  return t;
}

/** A TaskError / OffsiteError of work done in this process, as the CLI reports errors. */
export function asCliError(e: unknown): unknown {
  if (e instanceof TaskError) return new CliError(e.code, e.message, e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : {});
  if (e instanceof OffsiteError) return new CliError(`offsite_${e.code}`, e.message);
  return e;
}

/** Pulls NAME (or the newest complete archive) from TARGET into the storage dir, verified. */
export async function pullFromTarget(ctx: CliContext, target: OffsiteTarget, name: string | null): Promise<PullResult> {
  const config = ctx.config();
  const storage = getSettings(ctx.ledger(), config.paths.storage).backup_storage_path;
  ctx.info(`pulling ${name ?? 'the newest archive'} from ${target.name}…`);
  try {
    const r = await pullArchive(target, name, storage, config.paths.state, { ledger: ctx.ledger() });
    ctx.info(`${r.reused ? 'already here' : 'pulled'}: ${r.file} (${sizeHuman(r.size_bytes)}, SHA-256 checked against its sidecars)`);
    return r;
  } catch (e) {
    throw asCliError(e);
  }
}

export const offsiteGroup: CliTopGroup = {
  commands: [
    {
      name: 'list',
      summary: "the keeper archives on a target, newest first (from their .json sidecars)",
      usage: 'keeper offsite list TARGET [--json]',
      positionals: { min: 1, max: 1 },
      async run(ctx, { positionals }) {
        const t = targetArg(ctx.config(), positionals[0]);
        try {
          return await listRemote(t, ctx.config().paths.state);
        } catch (e) {
          throw asCliError(e);
        }
      },
      render(r, ctx) {
        const x = r as { target: string; where: string; items: RemoteArchive[]; skipped: string[] };
        ctx.print(`${x.target}: ${x.where}`);
        if (!x.items.length) ctx.print('no keeper archives there');
        for (const i of x.items) {
          ctx.print(
            `${i.date.replace('T', ' ').slice(0, 19)}  ${i.type.padEnd(21)} ${(i.version ?? '?').padEnd(12)} ${sizeHuman(i.size_bytes).padStart(10)}  ${i.encrypted ? 'enc ' : '    '}${i.complete ? '' : 'INCOMPLETE '}${i.file}`,
          );
        }
        for (const s of x.skipped) ctx.print(`skipped: ${s}`);
      },
    },
    {
      name: 'push',
      summary: 'copy one backup now (to every enabled target, or one), then check what arrived',
      usage: 'keeper offsite push ID [--target NAME] [--json]',
      options: { target: { type: 'string' } },
      positionals: { min: 1, max: 1 },
      async run(ctx, { values, positionals }) {
        const raw = positionals[0];
        if (!/^[1-9]\d{0,15}$/.test(raw)) throw usageError(`expected a backup id (see keeper backup list), got ${JSON.stringify(raw)}`);
        const target = typeof values.target === 'string' ? targetArg(ctx.config(), values.target).name : null;
        const job = await runTaskFromCli(ctx, 'offsite.push', { backup_id: Number(raw), target });
        return job.result;
      },
      render(r, ctx) {
        const x = r as OffsitePushResult;
        for (const c of x.copies) ctx.print(`${c.target}: ${c.status}${c.method ? ` (${c.method})` : ''}${c.ms !== undefined ? ` in ${c.ms} ms` : ''}  ${x.filename}`);
      },
    },
    {
      name: 'pull',
      summary: 'fetch an archive and its sidecars from a target into the storage dir, verified',
      usage: 'keeper offsite pull TARGET NAME [--json]',
      positionals: { min: 2, max: 2 },
      async run(ctx, { positionals }) {
        return pullFromTarget(ctx, targetArg(ctx.config(), positionals[0]), positionals[1]);
      },
      render(r, ctx) {
        const x = r as PullResult;
        ctx.print(`${x.file} (${sizeHuman(x.size_bytes)}, ${x.encrypted ? 'encrypted' : 'not encrypted'}) — verified against its sidecars`);
      },
    },
    {
      name: 'test',
      summary: 'write, read back and delete a small file on a target',
      usage: 'keeper offsite test TARGET [--json]',
      positionals: { min: 1, max: 1 },
      async run(ctx, { positionals }) {
        const t = targetArg(ctx.config(), positionals[0]);
        const job = await runTaskFromCli(ctx, 'offsite.test', { target: t.name });
        return job.result;
      },
      render(r, ctx) {
        const x = r as { target: string; where: string; ms: number };
        ctx.print(`${x.target}: ok (${x.where}; write, read back, delete in ${x.ms} ms)`);
      },
    },
  ],
};
