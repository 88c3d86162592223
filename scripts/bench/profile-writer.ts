// tsx scripts/bench/profile-writer.ts SANDBOX_DIR [--plain]
// The archive writer alone on a bench sandbox (no CLI, helper or maintenance window): wall, CPU, and
// this process's memory over time, to see where keeper's backup time and peak RSS go.
import { readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../runtime/config.ts';
import { readEnv } from '../../runtime/install.ts';
import { setTempStateDir } from '../../runtime/temp.ts';
import { dumpDatabase, readSettingsTable } from '../../runtime/mariadb.ts';
import { installSources } from '../../functions/backup/sources.ts';
import { readHead, writeArchive, ENTRY, type Source } from '../../archive/index.ts';
import { layout } from '../sandbox-kit/index.ts';
import { ownCpuMs } from './measure.ts';

const dir = process.argv[2];
const plain = process.argv.includes('--plain');
const L = layout(dir);
const config = loadConfig(L.config);
setTempStateDir(config.paths.state);
const env = readEnv(config);
const work = join(L.dir, 'bench-work', 'profile');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true, mode: 0o700 });

const archives = readdirSync(L.storage).filter((f) => f.endsWith('.tar.gz') && !f.startsWith('.'));
const any = archives.map((f) => join(L.storage, f)).find((f) => !JSON.parse(readFileSync(`${f}.json`, 'utf8')).metadata.encrypted);
if (!any) throw new Error('no plain keeper archive in the sandbox storage: run the bench once');
const head = await readHead(any);
const dump = await dumpDatabase(env, join(work, 'database.sql'));
const src = await installSources(config, await readSettingsTable(env), env);
const sources: Source[] = [
  { kind: 'buffer', path: ENTRY.metadata, data: Buffer.from(JSON.stringify(head.metadata)), mode: 0o600 },
  ...src.head,
  { kind: 'file', path: ENTRY.database, from: dump.file },
  ...src.code,
];
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const base = hwm();
const timeline: string[] = [];
const t0 = performance.now();
const c0 = ownCpuMs();
const timer = setInterval(() => {
  const m = process.memoryUsage();
  timeline.push(`${((performance.now() - t0) / 1000).toFixed(1)}s rss ${(m.rss / 2 ** 20).toFixed(0)} heap ${(m.heapUsed / 2 ** 20).toFixed(0)} ext ${(m.external / 2 ** 20).toFixed(0)} ab ${(m.arrayBuffers / 2 ** 20).toFixed(0)}`);
}, 500);
const r = await writeArchive({ dir: work, fileName: 'phpborg-backup-2026-01-01-000000-manual.tar.gz', root: 'phpborg-backup-2026-01-01-000000', sources, passphrase: plain ? null : 'bench-profile-passphrase' });
clearInterval(timer);
console.log(timeline.join('\n'));
console.log(
  `writeArchive ${plain ? 'plain' : 'encrypted'}: ${((performance.now() - t0) / 1000).toFixed(2)} s wall, ${((ownCpuMs() - c0) / 1000).toFixed(2)} s CPU (this process, workers included), ` +
    `${(r.size_bytes / 2 ** 20).toFixed(0)} MiB, ${r.files_count} files; VmHWM ${base.toFixed(0)} MiB before, ${hwm().toFixed(0)} MiB after`,
);
rmSync(work, { recursive: true, force: true });
process.exit(0);
