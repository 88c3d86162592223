// The service manager (systemctl, or the sandbox's stand-in), always spawned with argument arrays.
import type { KeeperConfig } from './config.ts';
import { run, runOk } from './exec.ts';

export interface ServiceManager {
  start(units: string[]): Promise<void>;
  stop(units: string[]): Promise<void>;
  isActive(unit: string): Promise<boolean>;
  /** state word as `systemctl is-active` prints it (active, inactive, failed, …) */
  state(unit: string): Promise<string>;
  /** the state word of each unit, in order, from ONE `is-active` call (one process, not one per unit) */
  states(units: string[]): Promise<string[]>;
  daemonReload(): Promise<void>;
}

export function serviceManager(config: Pick<KeeperConfig, 'service_manager'>): ServiceManager {
  const [cmd, ...prefix] = config.service_manager;
  const call = (args: string[]) => run(cmd, [...prefix, ...args], { timeoutMs: 120_000 });
  return {
    async start(units) {
      if (units.length) await runOk(cmd, [...prefix, 'start', ...units], { timeoutMs: 120_000 });
    },
    async stop(units) {
      if (units.length) await runOk(cmd, [...prefix, 'stop', ...units], { timeoutMs: 120_000 });
    },
    async isActive(unit) {
      return (await call(['is-active', '--quiet', unit])).code === 0;
    },
    async state(unit) {
      const r = await call(['is-active', unit]);
      return r.stdout.trim() || (r.code === 0 ? 'active' : 'unknown');
    },
    async states(units) {
      if (!units.length) return [];
      const r = await call(['is-active', ...units]);
      const words = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      // one line per unit; anything else (an error instead) reads as not active
      return units.map((_, i) => (words.length === units.length ? words[i] : 'unknown'));
    },
    async daemonReload() {
      await runOk(cmd, [...prefix, 'daemon-reload'], { timeoutMs: 60_000 });
    },
  };
}
