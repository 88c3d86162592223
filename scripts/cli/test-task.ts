// Test-only: `keeper test run TASK [--params JSON]` runs a test task through runTaskFromCli. Listed
// in the command table only when KEEPER_TEST_TASKS=1, and the test tasks exist only then too.
import { runTaskFromCli, usageError, type CliTopGroup } from './framework.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const testGroup: CliTopGroup = {
  commands: [
    {
      name: 'run',
      summary: 'run a test task through the helper',
      usage: 'keeper test run TASK [--params JSON] [--json]',
      options: { params: { type: 'string' } },
      positionals: { min: 1, max: 1 },
      async run(ctx, { values, positionals }) {
        let params: unknown = {};
        if (typeof values.params === 'string') {
          try {
            params = JSON.parse(values.params);
          } catch (e) {
            throw usageError(`--params: not JSON: ${errorMessage(e)}`);
          }
        }
        const job = await runTaskFromCli(ctx, positionals[0], params);
        return { job_id: job.id, status: job.status, result: job.result };
      },
    },
  ],
};
