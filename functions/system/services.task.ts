// Task system.services: the state of every configured unit, asked of the service manager.
import * as v from 'valibot';
import { defineTask } from '../../runtime/task.ts';
import { allUnits, maintenanceUnits, readEnv } from '../../runtime/install.ts';
import { serviceManager } from '../../runtime/service-manager.ts';

export const ServicesParams = v.object({});

export interface UnitState {
  unit: string;
  state: string;
  active: boolean;
  /** quiesced during maintenance windows */
  maintenance: boolean;
}

export const servicesTask = defineTask({
  name: 'system.services',
  params: ServicesParams,
  async run(ctx): Promise<{ units: UnitState[] }> {
    const env = readEnv(ctx.config);
    const units = allUnits(ctx.config, env);
    const quiesced = new Set(maintenanceUnits(ctx.config, env));
    const sm = serviceManager(ctx.config);
    ctx.progress('system.services.query', 10, `asking the service manager about ${units.length} units`, { count: units.length });
    const states = await Promise.all(
      units.map(async (unit): Promise<UnitState> => {
        const state = await sm.state(unit).catch((e: Error) => `unknown (${e.message})`);
        return { unit, state, active: state === 'active', maintenance: quiesced.has(unit) };
      }),
    );
    ctx.progress('system.services.done', 100, `${states.filter((s) => s.active).length} of ${units.length} units active`, {
      active: states.filter((s) => s.active).length,
      count: units.length,
    });
    return { units: states };
  },
});
