// Writes an archive (format v1) in ONE streaming pass: tar → gzip (parallel members) → AES-256-CBC →
// SHA-256 + HMAC → a temporary file, fsynced and renamed. API first; implementation follows.
import type { Manifest } from './format.ts';

export type Source =
  | { kind: 'buffer'; path: string; data: Buffer; mode?: number; mtime?: Date }
  | { kind: 'file'; path: string; from: string }
  | { kind: 'dir'; path: string; from: string; exclude?: (relPath: string, isDir: boolean) => boolean };

export interface WriteOptions {
  /** storage dir (must exist) */
  dir: string;
  /** e.g. archiveFileName(date, type) */
  fileName: string;
  /** top folder inside the tar, e.g. archiveBaseName(date) */
  root: string;
  /** in §3 order; manifest.json is appended by the writer itself */
  sources: Source[];
  /** null = plain gzip'd tar */
  passphrase: string | null;
  /** applies to every dir source (path relative to the source dir); a source's own exclude applies too */
  exclude?: (relPath: string, isDir: boolean) => boolean;
  /** gzip level, default 6 */
  level?: number;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface WriteResult {
  /** absolute path of the final archive */
  file: string;
  size_bytes: number;
  sha256: string;
  mac: string | null;
  key_check: string | null;
  /** regular files in the archive (manifest.json excluded) */
  files_count: number;
  manifest: Manifest;
}

export interface PlannedSize {
  files_count: number;
  total_size_bytes: number;
}

/** node_modules anywhere and the usual cache/tmp dirs at the top of the code dir. */
export function codeExclude(relPath: string, isDir: boolean): boolean {
  void relPath; void isDir;
  throw new Error('not implemented yet');
}

export async function plannedSize(sources: Source[], exclude?: WriteOptions['exclude']): Promise<PlannedSize> {
  void sources; void exclude;
  throw new Error('not implemented yet');
}

export async function writeArchive(opts: WriteOptions): Promise<WriteResult> {
  void opts;
  throw new Error('not implemented yet');
}

export interface SidecarInput {
  metadata: import('./format.ts').ArchiveMetadata;
  sha256: string;
  size_bytes: number;
  mac: string | null;
  key_check: string | null;
}

/** Writes `<file>.sha256` (sha256sum -c format) and `<file>.json`, each atomically, 0600. */
export async function writeSidecars(file: string, s: SidecarInput): Promise<{ sha256: string; json: string }> {
  void file; void s;
  throw new Error('not implemented yet');
}

/** Removes temporary files a crash left in the storage dir; returns their names. */
export async function removePartials(dir: string): Promise<string[]> {
  void dir;
  throw new Error('not implemented yet');
}
