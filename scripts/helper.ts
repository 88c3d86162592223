// The single-use helper's entry point: the task registry wired into the helper runtime. Bundled into
// var/build/helper.mjs (runtime/helper/bundle.ts); it imports the tasks only, never the HTTP app, so
// the elevated process stays small and quick to start.
import { runHelper } from '../runtime/helper/run.ts';
import { getTask } from '../functions/tasks.ts';

runHelper(getTask);
