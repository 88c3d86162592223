// Times as an administrator reads them on this machine: local time with its UTC offset
// ("2026-11-29 19:30:12 +01:00"), so a time is never mistaken for another zone's. --json keeps the
// ledger's ISO strings.
const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

export function localTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`
  );
}
