// Runs one of keeper's bundles (`node scripts/launch.mjs keeper|runner ARGS…`) with plain node: no
// TypeScript loader at run time. Plain JavaScript so that it starts at once: in a checkout it rebuilds
// the bundle first when one of its sources changed, and only then loads tsx (to run the builder).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleFresh, bundlePath } from '../runtime/bundle-fresh.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (name !== 'keeper' && name !== 'runner') {
  console.error('usage: node scripts/launch.mjs keeper|runner [ARGS…]');
  process.exit(2);
}
if (!bundleFresh(root, name)) {
  const { register } = await import('tsx/esm/api');
  const unregister = register();
  try {
    const { ensureBundle } = await import('../runtime/helper/bundle.ts');
    ensureBundle(name);
  } finally {
    await unregister();
  }
}
// the bundle sees the command line it would see run directly: node <bundle> ARGS…
const bundle = bundlePath(root, name);
process.argv.splice(1, 2, bundle);
await import(pathToFileURL(bundle).href);
