// Reads an archive (format v1): integrity, head (preview), full verification, safe extraction.
// API first; implementation follows.
import type { ArchiveMetadata, Manifest, SettingsFile, Sidecar } from './format.ts';

export interface Expected {
  sha256?: string | null;
  size_bytes?: number | null;
  mac?: string | null;
  key_check?: string | null;
}

export type IntegrityVerdict = 'ok' | 'corrupt' | 'truncated' | 'wrong_passphrase' | 'passphrase_required';

export interface IntegrityResult {
  verdict: IntegrityVerdict;
  message: string;
  encrypted: boolean;
  size_bytes: number;
  sha256: string | null;
  mac: string | null;
}

export async function isEncrypted(file: string): Promise<boolean> {
  void file;
  throw new Error('not implemented yet');
}

export async function readSidecar(file: string): Promise<Sidecar | null> {
  void file;
  throw new Error('not implemented yet');
}

export async function checkIntegrity(file: string, opts: { passphrase?: string | null; expected?: Expected } = {}): Promise<IntegrityResult> {
  void file; void opts;
  throw new Error('not implemented yet');
}

export interface Head {
  root: string;
  metadata: ArchiveMetadata;
  settings: SettingsFile;
  /** config/env.backup, config/sudoers/*, config/systemd/*, config/etc-phpborg/* → contents */
  config: Map<string, Buffer>;
  /** ssh/* files → mode and SHA-256 only (key material stays in the archive) */
  ssh: Map<string, { mode: number; sha256: string }>;
}

export async function readHead(file: string, opts: { passphrase?: string | null; expected?: Expected } = {}): Promise<Head> {
  void file; void opts;
  throw new Error('not implemented yet');
}

export interface VerifyCheck {
  name: 'size' | 'sha256' | 'hmac' | 'gzip' | 'tar' | 'layout' | 'manifest' | 'metadata';
  ok: boolean;
  error?: string;
}

export interface VerifyResult {
  ok: boolean;
  checks: VerifyCheck[];
  metadata: ArchiveMetadata | null;
}

export async function verifyArchive(file: string, opts: { passphrase?: string | null; expected?: Expected; signal?: AbortSignal } = {}): Promise<VerifyResult> {
  void file; void opts;
  throw new Error('not implemented yet');
}

export interface ExtractOptions {
  passphrase?: string | null;
  expected?: Expected;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Extracts into destDir (an empty staging dir the caller made) WITHOUT the top folder: destDir/metadata.json,
 * destDir/code/…, destDir/config/…, destDir/ssh/…, destDir/database.sql, destDir/manifest.json.
 * Checks integrity first (sha256/HMAC against `expected`), then every entry against the §3 layout and
 * manifest.json. Throws ArchiveError on any violation; the caller deletes destDir.
 */
export async function extractArchive(file: string, destDir: string, opts: ExtractOptions = {}): Promise<{ root: string; metadata: ArchiveMetadata; manifest: Manifest }> {
  void file; void destDir; void opts;
  throw new Error('not implemented yet');
}
