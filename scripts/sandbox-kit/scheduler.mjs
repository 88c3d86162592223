// A phpBorg scheduler stand-in (unit phpborg-scheduler): a real process that ticks, writing a heartbeat.
// Usage: scheduler.mjs HEARTBEAT_FILE
import { writeFileSync } from 'node:fs';
import { notifyReady, log } from './unit-env.mjs';

const [heartbeat] = process.argv.slice(2);
const tick = () => writeFileSync(heartbeat, `${new Date().toISOString()} ${process.pid}\n`);
tick();
const timer = setInterval(tick, 1000);
process.on('SIGTERM', () => {
  clearInterval(timer);
  log('scheduler stopping');
  process.exit(0);
});
notifyReady();
log(`scheduler started (pid ${process.pid})`);
