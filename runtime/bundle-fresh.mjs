// Whether a pre-built bundle is current, in plain JavaScript: the CLI's launcher asks it before any
// TypeScript loader exists, and runtime/helper/bundle.ts asks the same question the same way.
// The check stats only the sources esbuild reported as inputs (listed beside the bundle when it was
// built), a few milliseconds: a new source file matters only once an input imports it, which makes
// that input newer.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where bundle `name` lives: two levels below the project root, like its sources (see bundle.ts). */
export const bundlePath = (root, name) => join(root, 'var', 'build', `${name}.mjs`);

/** The list of the bundle's sources (project-relative), written beside it. */
export const inputsPath = (root, name) => join(root, 'var', 'build', `${name}.inputs.json`);

/** True when bundle `name` exists and none of its sources is newer or gone. */
export function bundleFresh(root, name) {
  try {
    const built = statSync(bundlePath(root, name)).mtimeMs;
    const inputs = JSON.parse(readFileSync(inputsPath(root, name), 'utf8'));
    return Array.isArray(inputs) && inputs.every((p) => statSync(join(root, p)).mtimeMs <= built);
  } catch {
    return false; // missing bundle, missing list or a source gone: rebuild
  }
}
