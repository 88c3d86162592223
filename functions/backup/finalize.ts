// The last step of every archive that enters the storage dir: 0600, its sidecars, its catalog row.
// Shared by the backup core, the emergency safety copy, the upload and the bare-metal restore.
import { chmod, open } from 'node:fs/promises';
import type { Ledger } from '../../state/ledger.ts';
import { completedBackup, markSucceeded } from '../../state/catalog.ts';
import { writeSidecars, type ArchiveMetadata, type WriteResult } from '../../archive/index.ts';
import { deriveKeys, HEADER_LEN, keyCheck, saltOf } from '../../archive/crypto.ts';

/**
 * An archive the keeper has just written: made 0600, its sidecars written and, when it has a
 * catalog row, the row marked succeeded — only now does the backup exist.
 */
export async function finalizeArchive(
  written: WriteResult,
  metadata: ArchiveMetadata,
  createdAt: Date,
  row: { ledger: Ledger; id: number } | null,
): Promise<{ sha256: string; json: string }> {
  await chmod(written.file, 0o600);
  const side = await writeSidecars(written.file, {
    metadata,
    sha256: written.sha256,
    size_bytes: written.size_bytes,
    mac: written.mac,
    key_check: written.key_check,
    created_at: createdAt,
  });
  if (row) {
    // files_count: what was really written (a file may have come or gone since the plan)
    const c = completedBackup({ ...written, sha256_path: side.sha256, json_path: side.json }, { ...metadata, files_count: written.files_count });
    markSucceeded(row.ledger, row.id, c);
  }
  return side;
}

/** The key check of an encrypted archive for its sidecar (proves a passphrase without decrypting); null when plain. */
export async function keyCheckOf(file: string, passphrase: string): Promise<string | null> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(HEADER_LEN);
    await fh.read(head, 0, HEADER_LEN, 0);
    const salt = saltOf(head);
    return salt ? keyCheck(await deriveKeys(passphrase, salt)) : null;
  } finally {
    await fh.close();
  }
}
