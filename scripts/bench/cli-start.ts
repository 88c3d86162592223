// The CLI's start-up: `keeper --config C --json backup list` (reads the ledger only: no helper, no
// database, so it works while the sandbox's services are stopped), run RUNS times one after another.
// The sample's wall time is the median; a first, unmeasured run rebuilds a stale bundle.
import { spawn } from 'node:child_process';
import { safeEnv } from '../../runtime/exec.ts';
import type { BenchCtx, Sample } from './contenders.ts';
import { childCpuMs, spread } from './measure.ts';

const RUNS = 20;

async function once(c: BenchCtx): Promise<number> {
  const args = ['--config', c.configPath, '--json', 'backup', 'list'];
  const t0 = performance.now();
  const child = spawn(c.keeperBin, args, { env: safeEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`keeper ${args.join(' ')} failed (exit ${code}): ${err.trim().split('\n').slice(-5).join(' | ')}`);
  return wall;
}

export async function cliStart(c: BenchCtx): Promise<Sample> {
  await once(c);
  const c0 = childCpuMs();
  const walls: number[] = [];
  for (let i = 0; i < RUNS; i++) walls.push(await once(c));
  const s = spread(walls)!;
  return { wall_ms: s.median, cpu_ms: (childCpuMs() - c0) / RUNS, extra: { runs: s.n, min_ms: s.min, max_ms: s.max, command: 'backup list' } };
}
