// Reading a target back: what archives it holds (from their .json sidecars, so nothing large is
// downloaded to list them) and fetching one into the storage dir, verified, for a machine that has
// nothing else left.
import { chmod, copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import type { OffsiteTarget } from '../../runtime/config.ts';
import { describeTarget, partialName, sha256File, transportFor } from '../../runtime/offsite.ts';
import { withKeeperTemp } from '../../runtime/temp.ts';
import { TaskError } from '../../runtime/task.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import type { Ledger } from '../../state/ledger.ts';
import { parseArchiveFileName, SidecarSchema, type Sidecar } from '../../archive/format.ts';
import { copiedSha256 } from '../../state/offsite.ts';

export interface RemoteArchive {
  file: string;
  date: string;
  type: string;
  version: string | null;
  size_bytes: number;
  encrypted: boolean;
  sha256: string;
  /** the archive is there with the size its sidecar gives, and so is its .sha256 */
  complete: boolean;
}

async function readSidecar(target: OffsiteTarget, name: string, dir: string): Promise<Sidecar> {
  const f = join(dir, `${name}.json`);
  await transportFor(target).get(`${name}.json`, f);
  const r = v.safeParse(SidecarSchema, JSON.parse(await readFile(f, 'utf8')));
  if (!r.success || r.output.file !== name) throw new TaskError('offsite_bad_sidecar', `${name}.json on ${target.name} is not this archive's keeper sidecar`);
  return r.output;
}

/** The keeper archives on a target, newest first, described by their .json sidecars. */
export async function listRemote(target: OffsiteTarget, stateDir: string): Promise<{ target: string; where: string; items: RemoteArchive[]; skipped: string[] }> {
  const listing = await transportFor(target).list();
  const sizes = new Map(listing.map((e) => [e.name, e.size]));
  const names = listing.map((e) => e.name).filter((n) => parseArchiveFileName(n) && sizes.has(`${n}.json`));
  const skipped: string[] = [];
  const items = await withKeeperTemp(
    'offsite-list',
    async (dir) => {
      const out: RemoteArchive[] = [];
      for (const n of names) {
        try {
          const s = await readSidecar(target, n, dir);
          out.push({
            file: n,
            date: s.metadata.backup_date,
            type: s.metadata.backup_type,
            version: s.metadata.phpborg_version,
            size_bytes: s.size_bytes,
            encrypted: s.metadata.encrypted,
            sha256: s.sha256,
            complete: sizes.get(n) === s.size_bytes && sizes.has(`${n}.sha256`),
          });
        } catch (e) {
          skipped.push(`${n}: ${errorMessage(e)}`);
        }
      }
      return out;
    },
    stateDir,
  );
  items.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0));
  return { target: target.name, where: describeTarget(target), items, skipped };
}

export interface PullResult {
  target: string;
  file: string;
  filename: string;
  size_bytes: number;
  sha256: string;
  encrypted: boolean;
  reused: boolean;
  ms: number;
}

/**
 * Fetches archive + sidecars into `storageDir` and checks the archive against both sidecars (and
 * against the SHA-256 this ledger recorded when it copied the file there, when it did): a tampered or
 * cut archive is refused and nothing is left under its name. Written as `.<name>.partial`, renamed.
 */
export async function pullArchive(
  target: OffsiteTarget,
  name: string | null,
  storageDir: string,
  stateDir: string,
  opts: { ledger?: Ledger | null; signal?: AbortSignal } = {},
): Promise<PullResult> {
  const t0 = performance.now();
  if (name === null) {
    const { items } = await listRemote(target, stateDir);
    const newest = items.find((i) => i.complete);
    if (!newest) throw new TaskError('offsite_empty', `no complete keeper archive on ${target.name} (${describeTarget(target)})`);
    name = newest.file;
  }
  if (!parseArchiveFileName(name)) throw new TaskError('usage', `not a keeper archive name: ${JSON.stringify(name)} (keeper offsite list ${target.name})`);
  const tr = transportFor(target);
  await mkdir(storageDir, { recursive: true, mode: 0o700 });
  await chmod(storageDir, 0o700);
  return withKeeperTemp(
    'offsite-pull',
    async (dir) => {
      const side = await readSidecar(target, name!, dir);
      const shaFile = join(dir, `${name}.sha256`);
      await tr.get(`${name}.sha256`, shaFile);
      const shaLine = (await readFile(shaFile, 'utf8')).trim();
      const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(shaLine);
      if (!m || m[1] !== side.sha256 || m[2] !== name) {
        throw new TaskError('offsite_tampered', `${name}: its .sha256 and .json sidecars on ${target.name} disagree; not pulled`);
      }
      const known = opts.ledger ? copiedSha256(opts.ledger, target.name, name!) : null;
      if (known && known !== side.sha256) {
        throw new TaskError('offsite_tampered', `${name}: the sidecar on ${target.name} gives SHA-256 ${side.sha256}, this install copied ${known}; not pulled`);
      }
      const final = join(storageDir, name!);
      const existing = await stat(final).catch(() => null);
      if (existing) {
        if (existing.size === side.size_bytes && (await sha256File(final)) === side.sha256) {
          await placeSidecars(dir, storageDir, name!);
          return { target: target.name, file: final, filename: name!, size_bytes: side.size_bytes, sha256: side.sha256, encrypted: side.metadata.encrypted, reused: true, ms: Math.round(performance.now() - t0) };
        }
        throw new TaskError('exists', `${final} exists and is not this archive; move it away first`);
      }
      const partial = join(storageDir, partialName(name!));
      try {
        // a pull killed earlier left its partial: this one starts over
        await rm(partial, { force: true });
        await tr.get(name!, partial, opts.signal);
        const st = await stat(partial);
        if (st.size !== side.size_bytes) throw new TaskError('offsite_tampered', `${name} on ${target.name} is ${st.size} bytes, its sidecar says ${side.size_bytes}: cut or tampered; not pulled`);
        const got = await sha256File(partial);
        if (got !== side.sha256) throw new TaskError('offsite_tampered', `${name} on ${target.name} has SHA-256 ${got}, its sidecar says ${side.sha256}: tampered or damaged; not pulled`);
        await chmod(partial, 0o600);
        await rename(partial, final);
      } catch (e) {
        await rm(partial, { force: true });
        if (e instanceof TaskError) throw e;
        throw new TaskError('offsite_pull_failed', `cannot fetch ${name} from ${target.name}: ${errorMessage(e)}`, undefined, undefined, { cause: e });
      }
      await placeSidecars(dir, storageDir, name!);
      return { target: target.name, file: final, filename: name!, size_bytes: side.size_bytes, sha256: side.sha256, encrypted: side.metadata.encrypted, reused: false, ms: Math.round(performance.now() - t0) };
    },
    stateDir,
  );
}

async function placeSidecars(from: string, storageDir: string, name: string): Promise<void> {
  for (const ext of ['.sha256', '.json']) {
    const tmp = join(storageDir, partialName(`${name}${ext}`));
    await copyFile(join(from, `${name}${ext}`), tmp);
    await chmod(tmp, 0o600);
    await rename(tmp, join(storageDir, `${name}${ext}`));
  }
}
