// backup.verify through the real CLI path (keeper → job → helper), the helper's peak RSS sampled: the
// in-process `verify` contender runs inside the bench itself, so its memory says nothing of the helper's.
import { keeperCli, type BenchCtx, type Sample } from './contenders.ts';

export async function verifyCli(c: BenchCtx, id: number): Promise<Sample> {
  const r = await keeperCli(c, ['backup', 'verify', String(id)]);
  const checks = (r.json as { checks?: { ok: boolean }[] }).checks ?? [];
  if (!checks.length || checks.some((x) => !x.ok)) throw new Error(`keeper backup verify ${id} did not pass every check`);
  return { wall_ms: r.wall_ms, cpu_ms: r.cpu_ms, rss: r.rss };
}
