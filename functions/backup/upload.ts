// POST /api/phpborg-backup/upload — multipart/form-data with a `file` part (the archive) and an optional
// `passphrase` field (for an encrypted archive whose passphrase is not the stored one; it may come
// before or after the file). The file is streamed to a 0600 temp file in the storage dir, never
// buffered whole, and cut off at config.upload_max_bytes (413). It must be a keeper archive that passes
// full verification (size, HMAC, gzip, tar, layout, manifest, metadata); otherwise 422 and nothing is
// left behind. Then it is renamed to its canonical name, its sidecars are written, and it is registered
// in the catalog with origin `uploaded` → 201 {backup}.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Context } from 'hono';
import Busboy from 'busboy';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import { audit } from '../../state/audit.ts';
import { completedBackup, getBackup, getBackupByFilename, insertCompleted, sizeHuman } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { archiveFileName, checkIntegrity, isEncrypted, verifyArchive, writeSidecars } from '../../archive/index.ts';
import { keyCheckOf } from './finalize.ts';
import { verifyFailure } from './verify.task.ts';
import { ArchiveError } from '../../archive/errors.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { ensureOwnStorageDir } from '../../runtime/storage-path.ts';

const MAX_PASSPHRASE = 1024;
/** How far ahead of this clock an archive's date may be (another machine's clock drifts a little). */
export const MAX_CLOCK_SKEW_MS = 10 * 60 * 1000;

export interface Received {
  tmp: string;
  size: number;
  sha256: string;
  passphrase: string | null;
  /** the setup wizard's confirmation that the archive's database or user may differ from a live .env's */
  acceptDbChange: boolean;
}

/** Streams the multipart body: the `file` part to `tmp`, small fields kept. */
export async function receive(c: Context<AppEnv>, tmp: string, limit: number): Promise<Received> {
  const type = c.req.header('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'send multipart/form-data with a "file" part (and an optional "passphrase" field)');
  }
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit + 64 * 1024) {
    throw new HttpError(413, 'too_large', `the upload is ${sizeHuman(declared)}; the limit is ${sizeHuman(limit)} (upload_max_bytes)`);
  }
  const body = c.req.raw.body;
  if (!body) throw new HttpError(422, 'invalid_input', 'empty request body: send the archive as the "file" part');

  const tooLarge = () => {
    // the rest of the body is never read: the connection closes after the answer
    c.header('Connection', 'close');
    return new HttpError(413, 'too_large', `the upload exceeds the limit of ${sizeHuman(limit)} (upload_max_bytes)`);
  };
  const src = Readable.fromWeb(body as unknown as WebReadableStream<Uint8Array>);
  return new Promise<Received>((resolve0, reject0) => {
    let settled = false;
    const resolve = (r: Received) => (settled ? undefined : ((settled = true), resolve0(r)));
    const reject = (e: unknown) => (settled ? undefined : ((settled = true), reject0(e)));
    // set at the limit: the answer is 413 whatever the parser reports as it is torn down
    let limited = false;
    /** At the limit: stop reading (a chunked body declares no length) and answer 413. */
    const cutOff = () => {
      limited = true;
      src.unpipe();
      src.pause();
      // ends the file part too, once busboy is out of the callback that reported the limit; the answer
      // waits until its temp file is created and closed, so that the handler's removal comes after
      setImmediate(() => {
        bb?.destroy();
        const closed = fileDone ? fileDone.then(() => {}, () => {}) : Promise.resolve();
        void Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]).then(() => reject(tooLarge()));
      });
    };
    let bb: Busboy.Busboy | undefined;
    try {
      bb = Busboy({ headers: { 'content-type': type }, limits: { files: 1, fields: 4, fieldSize: MAX_PASSPHRASE, fileSize: limit } });
    } catch (e) {
      reject(new HttpError(422, 'invalid_input', `not a valid multipart body: ${errorMessage(e)}`));
      return;
    }
    let passphrase: string | null = null;
    let acceptDbChange = false;
    let fileDone: Promise<{ size: number; sha256: string; truncated: boolean }> | null = null;
    let failed: Error | null = null;
    const fail = (e: Error) => {
      if (!failed) failed = e;
    };
    bb.on('field', (name, value, info) => {
      if (name === 'passphrase' && value) {
        if (info.valueTruncated) fail(new HttpError(422, 'invalid_input', `passphrase: expected at most ${MAX_PASSPHRASE} characters`));
        else passphrase = value;
      }
      if (name === 'accept_db_change') acceptDbChange = ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
    });
    bb.on('file', (name, stream) => {
      if (name !== 'file' || fileDone) {
        stream.resume();
        return;
      }
      const hash = createHash('sha256');
      let size = 0;
      let truncated = false;
      stream.on('data', (b: Buffer) => {
        hash.update(b);
        size += b.length;
      });
      stream.on('limit', () => {
        truncated = true;
        cutOff();
      });
      fileDone = pipeline(stream, createWriteStream(tmp, { flags: 'wx', mode: 0o600 })).then(() => ({ size, sha256: hash.digest('hex'), truncated }));
      fileDone.catch(() => {});
    });
    bb.on('filesLimit', () => fail(new HttpError(422, 'invalid_input', 'send one archive per upload')));
    bb.on('error', (e) => limited || reject(new HttpError(422, 'invalid_input', `not a valid multipart body: ${errorMessage(e)}`)));
    bb.on('close', async () => {
      if (limited) return;
      try {
        if (failed) throw failed;
        if (!fileDone) throw new HttpError(422, 'invalid_input', 'no "file" part: send the archive as the "file" field of a multipart/form-data body');
        const f = await fileDone;
        if (f.truncated) throw tooLarge();
        resolve({ tmp, size: f.size, sha256: f.sha256, passphrase, acceptDbChange });
      } catch (e) {
        reject(e);
      }
    });
    // the whole body counts, not only the file part: fields and padding are bounded too
    let total = 0;
    src.on('data', (b: Buffer) => {
      total += b.length;
      if (total > limit + 64 * 1024) cutOff();
    });
    src.on('error', (e) => limited || reject(e)).pipe(bb);
  });
}

export async function uploadHandler(c: Context<AppEnv>): Promise<Response> {
  const { config, ledger } = c.env;
  let storage: string;
  try {
    storage = await ensureOwnStorageDir(config, getSettings(ledger, config.paths.storage).backup_storage_path);
  } catch (e) {
    throw new HttpError(422, 'storage_unusable', `cannot use the storage directory: ${errorMessage(e)}`, { key: 'backup_storage_path' });
  }
  // a dot name the catalog and the sidecar scan never take for an archive
  const tmp = join(storage, `.upload-${randomBytes(8).toString('hex')}.partial`);
  const actor = c.var.actor;
  let final: string | null = null;
  try {
    const got = await receive(c, tmp, config.upload_max_bytes);
    if (got.size === 0) throw new HttpError(422, 'invalid_input', 'the uploaded file is empty');
    const encrypted = await isEncrypted(tmp);
    const passphrase = encrypted ? got.passphrase ?? getSettings(ledger, config.paths.storage).backup_encryption_passphrase : null;
    if (encrypted && !passphrase) {
      throw new HttpError(422, 'passphrase_required', 'the archive is encrypted and no passphrase is stored: send its "passphrase" field too');
    }
    const v = await verifyArchive(tmp, { passphrase, expected: { sha256: got.sha256, size_bytes: got.size } });
    if (!v.ok || !v.metadata) {
      const code = v.code === 'wrong_passphrase' || v.code === 'passphrase_required' ? v.code : 'not_a_keeper_archive';
      throw new HttpError(422, code, `not a valid phpborg-keeper archive: ${verifyFailure(v.checks) || 'no metadata'}`, {
        checks: v.checks,
      });
    }
    const md = v.metadata;
    const claimed = Date.parse(md.backup_date);
    const now = c.env.clock.now().getTime();
    if (!Number.isFinite(claimed) || claimed > now + MAX_CLOCK_SKEW_MS) {
      throw new HttpError(422, 'future_date', `the archive says it was made on ${md.backup_date}, later than now (${new Date(now).toISOString()}): an archive from the future is refused`);
    }
    const integrity = encrypted ? await checkIntegrity(tmp, { passphrase }) : null;
    const name = archiveFileName(new Date(md.backup_date), md.backup_type);
    const existing = getBackupByFilename(ledger, name);
    if (existing) throw new HttpError(409, 'already_exists', `this archive is already in the catalog as backup ${existing.id} (${name})`, { backup_id: existing.id });
    final = join(storage, name);
    if (await stat(final).then(() => true, () => false)) {
      final = null;
      throw new HttpError(409, 'already_exists', `${name} already exists in ${storage}`);
    }
    await rename(tmp, final);
    const mac = integrity?.mac ?? null;
    const key_check = encrypted && passphrase ? await keyCheckOf(final, passphrase) : null;
    const side = await writeSidecars(final, { metadata: md, sha256: got.sha256, size_bytes: got.size, mac, key_check });
    const id = insertCompleted(
      ledger,
      {
        filename: name,
        filepath: final,
        backup_type: md.backup_type,
        notes: md.notes,
        encrypted,
        created_at: md.backup_date,
        created_by: actor.id,
        created_by_name: actor.name,
        origin: 'uploaded',
      },
      completedBackup({ size_bytes: got.size, sha256: got.sha256, mac, sha256_path: side.sha256, json_path: side.json }, md),
    );
    audit(ledger, { actor, action: 'backup.upload', target: String(id), outcome: 'succeeded', details: { filename: name, size_bytes: got.size } });
    return c.json({ backup: getBackup(ledger, id) }, 201);
  } catch (e) {
    await rm(tmp, { force: true });
    if (final) {
      // registered nothing: remove what this request renamed into place
      await rm(final, { force: true });
      await rm(`${final}.sha256`, { force: true });
      await rm(`${final}.json`, { force: true });
    }
    try {
      audit(ledger, { actor, action: 'backup.upload', outcome: 'rejected', details: { error: errorMessage(e) } });
    } catch {
      /* the error below matters more */
    }
    if (e instanceof HttpError) throw e;
    // the archive core's code (wrong_passphrase, corrupt, truncated…): the pages translate it
    const code = e instanceof ArchiveError ? e.code : 'invalid_archive';
    throw new HttpError(422, code, `the upload was refused: ${errorMessage(e)}`);
  }
}
