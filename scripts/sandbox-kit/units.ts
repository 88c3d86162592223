// The units DIR/bin/systemctl manages, and the stand-in itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Layout } from './layout.ts';
import type { SandboxMeta, UnitSpec } from './meta.ts';
import { mariadbUnit } from './mariadb.ts';
import { redisUnit } from './redis.ts';

// from the project root, not this module's directory: the runner's bundle (var/build/) includes it
const here = fileURLToPath(new URL('../../scripts/sandbox-kit/', import.meta.url));
const script = (name: string) => join(here, name);

export function unitSpecs(L: Layout, ports: SandboxMeta['ports']): Record<string, UnitSpec> {
  const node = process.execPath;
  return {
    mariadb: mariadbUnit(L, ports.mysql),
    'redis-server': redisUnit(L, ports.redis),
    'phpborg-api': { argv: [node, script('api.mjs'), L.code, String(ports.api)], cwd: L.code, ready: { tcp: ports.api, notify: true }, stop_timeout_s: 10 },
    // Type=simple, as their unit files say: start returns once the process runs, like systemd's
    'phpborg-scheduler': { argv: [node, script('scheduler.mjs'), join(L.run, 'scheduler.heartbeat')], cwd: L.code, ready: {}, stop_timeout_s: 10 },
    'phpborg-worker@': { argv: [node, script('worker.mjs'), L.code, '%i'], cwd: L.code, ready: {}, stop_timeout_s: 15, template: true },
  };
}

/** DIR/bin/systemctl: a shell shim into the Node stand-in, with DIR baked in. */
export function writeSystemctl(L: Layout): void {
  mkdirSync(L.bin, { recursive: true });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(L.systemctl, `#!/bin/sh\n# phpBorg sandbox stand-in for systemctl (see scripts/sandbox-kit/systemctl.mjs)\nexec ${q(process.execPath)} ${q(script('systemctl.mjs'))} ${q(L.dir)} "$@"\n`, { mode: 0o755 });
}
