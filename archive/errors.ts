// The one error type of the archive core: a stable code callers can branch on, and a message for people.
export type ArchiveErrorCode =
  | 'wrong_passphrase'
  | 'passphrase_required'
  | 'corrupt'
  | 'truncated'
  | 'unsafe_entry'
  | 'layout'
  | 'manifest_mismatch'
  | 'not_keeper'
  | 'missing_entry'
  | 'aborted'
  | 'insufficient_space'
  | 'io';

export class ArchiveError extends Error {
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    /** the entry concerned, relative to the archive's top folder, when there is one */
    readonly entry?: string,
    /** which verification step found it (gzip, tar, …) when not implied by the code */
    readonly check?: string,
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export const isArchiveError = (e: unknown, code?: ArchiveErrorCode): e is ArchiveError =>
  e instanceof ArchiveError && (code === undefined || e.code === code);
