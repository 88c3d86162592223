// The way out when an operation leaves the install half-changed: the exact terminal command that
// restores an archive with scripts/emergency-restore (as root: it refuses otherwise).
import { fileURLToPath } from 'node:url';

// Absolute, so the command works from any directory. This module sits two levels under the project
// root both as source (runtime/operation/) and bundled into the helper (var/build/).
const EMERGENCY_SCRIPT = fileURLToPath(new URL('../../scripts/emergency-restore', import.meta.url));

/** A word a POSIX shell reads back unchanged (quoted only when needed). */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function emergencyCommand(ctx: { configPath: string }, target: { id: number | null; file: string }): string {
  return ['sudo', EMERGENCY_SCRIPT, String(target.id ?? target.file), '--config', ctx.configPath].map(shellWord).join(' ');
}
