// The notes keeper writes itself on the backups it takes (before a restore, before an update, the
// emergency safety copy) are stored as a code with parameters, not as English prose, so each reader
// sees them in their own language: the pages translate the code, the CLI and the archive's metadata
// read the English rendering. A note a person typed is kept as typed.
export type AutoNoteCode = 'before_restore' | 'before_update' | 'emergency_safety';

export interface AutoNote {
  code: AutoNoteCode;
  params: Record<string, string>;
}

const PREFIX = 'keeper:';
const CODES: readonly AutoNoteCode[] = ['before_restore', 'before_update', 'emergency_safety'];

export function autoNote(code: AutoNoteCode, params: Record<string, string> = {}): string {
  return `${PREFIX}${code} ${JSON.stringify(params)}`;
}

/** The code and parameters of an automatic note; null for a person's note (or none). */
export function parseAutoNote(notes: string | null | undefined): AutoNote | null {
  if (!notes?.startsWith(PREFIX)) return null;
  const m = /^keeper:(\w+) (\{.*\})$/s.exec(notes);
  if (!m || !CODES.includes(m[1] as AutoNoteCode)) return null;
  try {
    const raw = JSON.parse(m[2]!) as Record<string, unknown>;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') params[k] = v;
    return { code: m[1] as AutoNoteCode, params };
  } catch {
    return null;
  }
}

const EN: Record<AutoNoteCode, (p: Record<string, string>) => string> = {
  before_restore: (p) => `automatic backup before restoring ${p.file ?? ''}`.trim(),
  before_update: (p) => `automatic backup before updating ${p.from ?? '?'} → ${p.to ?? '?'}`,
  emergency_safety: () => 'emergency safety copy',
};

/** A note as English text (CLI, logs): automatic notes rendered, a person's note as typed. */
export function noteText(notes: string | null | undefined): string | null {
  const a = parseAutoNote(notes);
  if (!a) return notes ?? null;
  const skipped = a.params.database_skipped ? `; database NOT included: ${a.params.database_skipped}` : '';
  return EN[a.code](a.params) + skipped;
}
