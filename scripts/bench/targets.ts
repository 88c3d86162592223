// The performance targets, each judged on one run's samples: met, missed, or not run (its contenders
// were left out with --only). One table so that the bench, its JSON and the README say the same thing.
import type { Sample } from './contenders.ts';
import { RESPONSIVE_P99_MS } from './responsiveness.ts';

export interface TargetResult {
  id: string;
  target: string;
  /** the measured figure (null: not run) */
  value: number | null;
  unit: 'ms' | 'MiB' | '×';
  limit: number;
  ok: boolean | null;
}

type Samples = Partial<Record<string, Sample[]>>;

const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const max = (xs: number[]): number | null => (xs.length ? Math.max(...xs) : null);
const round = (x: number | null, digits: number): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);

const wall = (s: Samples, n: string) => median((s[n] ?? []).map((x) => x.wall_ms));
const ratio = (a: number | null, b: number | null) => (a !== null && b ? a / b : null);
const helperPeak = (s: Samples, ...names: string[]) =>
  max(names.flatMap((n) => (s[n] ?? []).map((x) => x.rss?.peak_mib.helper).filter((x): x is number => typeof x === 'number' && x > 0)));
/** a percentile the load case put in `extra` (worst run) */
const loadP99 = (s: Samples, route: string) =>
  max((s.responsiveness ?? []).map((x) => (x.extra?.during_backup as Record<string, { p99: number }> | undefined)?.[route]?.p99).filter((x): x is number => typeof x === 'number'));

const judge = (id: string, target: string, value: number | null, unit: TargetResult['unit'], limit: number, digits = unit === '×' ? 2 : 0): TargetResult => {
  const v = round(value, digits);
  return { id, target, value: v, unit, limit, ok: v === null ? null : v <= limit };
};

export function judgeTargets(s: Samples): TargetResult[] {
  const windows = [...(s.keeper_enc ?? []), ...(s.keeper_plain ?? [])].filter((x) => x.maintenance_window_ms !== undefined && x.dump_ms !== undefined);
  return [
    judge('backup_vs_stream', 'keeper backup, end to end through the CLI ÷ the best shell stream (encrypted, median)', ratio(wall(s, 'keeper_enc'), wall(s, 'stream_enc')), '×', 1.0),
    judge('cli_start', 'CLI start (keeper --json backup list, median)', wall(s, 'cli_start'), 'ms', 200),
    judge('rss_backup', 'helper peak RSS, backup (worst run)', helperPeak(s, 'keeper_enc', 'keeper_plain'), 'MiB', 128),
    judge('rss_restore', 'helper peak RSS, restore with and without its safety backup (worst run)', helperPeak(s, 'keeper_restore', 'keeper_restore_safety'), 'MiB', 128),
    judge('rss_verify', 'helper peak RSS, verify through the CLI (worst run)', helperPeak(s, 'verify_cli'), 'MiB', 128),
    judge('restore_vs_shell', 'keeper restore (safety backup skipped) ÷ the shell sequence (median)', ratio(wall(s, 'keeper_restore'), wall(s, 'shell_restore')), '×', 1.0),
    judge('preview', 'restore preview of an encrypted archive (in-process, median)', wall(s, 'preview'), 'ms', 300),
    judge('health_p99', 'GET /api/health p99 during a backup with 50 SSE clients (worst run)', loadP99(s, 'health'), 'ms', RESPONSIVE_P99_MS),
    judge('list_p99', 'GET /api/phpborg-backup/list p99 during a backup with 50 SSE clients (worst run)', loadP99(s, 'list'), 'ms', RESPONSIVE_P99_MS),
    judge('window', 'maintenance window minus the dump (worst run)', max(windows.map((x) => x.maintenance_window_ms! - x.dump_ms!)), 'ms', 1000),
  ];
}

export const targetLine = (t: TargetResult): string =>
  `${t.ok === null ? 'NOT RUN' : t.ok ? 'MET    ' : 'MISSED '} ${t.target}: ${t.value === null ? '-' : `${t.value}${t.unit === '×' ? '×' : ` ${t.unit}`}`} (limit ${t.limit}${t.unit === '×' ? '×' : ` ${t.unit}`})`;
