// `npm run build:helper`: bundles the single-use helper (var/build/helper.mjs) ahead of time, as
// root at install, so the keeper user never needs to write what sudo runs.
import { ensureHelperBundle } from '../runtime/helper/bundle.ts';

console.log(ensureHelperBundle());
