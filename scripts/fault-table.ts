// Prints the fault table (operation × step → the install after recovery, and the job's status) from
// the rows the crash tests write to var/faults/*.json, as the Markdown the README shows.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';

interface Row {
  operation: string;
  step: string;
  outcome: 'before' | 'after';
  job: string;
}

const dir = join(PROJECT_ROOT, 'var', 'faults');
const order = ['backup', 'restore', 'update', 'rollback', 'emergency'];
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
if (!files.length) {
  console.error('no fault rows yet: run node --import tsx --test test/faults-*.test.ts first');
  process.exit(1);
}
const rows = files
  .flatMap((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Row[])
  .sort((a, b) => order.indexOf(a.operation) - order.indexOf(b.operation));
// consecutive steps with the same outcome share a row
const groups: { head: Row; steps: string[] }[] = [];
for (const r of rows) {
  const last = groups.at(-1);
  if (last && last.head.operation === r.operation && last.head.outcome === r.outcome && last.head.job === r.job) last.steps.push(r.step);
  else groups.push({ head: r, steps: [r.step] });
}
console.log('| operation | killed at (each of these steps) | install after recovery | job ends |');
console.log('|---|---|---|---|');
for (const g of groups) console.log(`| ${g.head.operation} | ${g.steps.map((s) => `\`${s}\``).join(', ')} | ${g.head.outcome} | ${g.head.job} |`);
const mixed = rows.filter((r) => r.outcome !== 'before' && r.outcome !== 'after');
if (mixed.length) process.exit(1);
