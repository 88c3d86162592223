// The benchmark's sandbox: scripts/sandbox-kit at --size MiB, then reshaped to a real tree's file count.
// The kit pads vendor/ with a few hundred 64 KiB blobs; a real phpBorg tree holds ~17,000 source files
// of a few KiB. We replace those blobs with as many bytes of varied PHP-like text in small files, so
// the code size and the database (a fifth of --size) stay what the kit made. Done once per sandbox.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { upSandbox, layout, type Layout, type SandboxInfo } from '../sandbox-kit/index.ts';

export const TARGET_FILES_AT_250 = 17_000;

export interface Shape {
  files: number;
  code_bytes: number;
  small_files_added: number;
}

function count(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const r = count(p);
      files += r.files;
      bytes += r.bytes;
    } else {
      files++;
      bytes += lstatSync(p).size;
    }
  }
  return { files, bytes };
}

/** a small, seeded PRNG: the same tree every time */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'repository server archive backup borg job worker queue schedule retention mount restore snapshot prune ' +
  'compact encrypt key passphrase ssh agent host port user path size count status message error result ' +
  'config setting value cache logger event handler request response token role admin entity manager query ' +
  'builder connection statement transaction migration version update check health notify mail template'
).split(' ');

function phpFile(r: () => number, ns: string, cls: string, bytes: number): string {
  const w = () => WORDS[Math.floor(r() * WORDS.length)];
  const cap = (s: string) => s[0].toUpperCase() + s.slice(1);
  let s = `<?php\n\ndeclare(strict_types=1);\n\nnamespace ${ns};\n\nuse ${ns}\\${cap(w())}${cap(w())};\n\nfinal class ${cls}\n{\n`;
  let i = 0;
  while (s.length < bytes - 2) {
    const a = w();
    const b = w();
    s +=
      `    /** ${cap(a)} the ${b} of the ${w()} (${Math.floor(r() * 1e6)}). */\n` +
      `    public function ${a}${cap(b)}${i++}(array $${w()}, int $${w()} = ${Math.floor(r() * 1000)}): ?string\n    {\n` +
      `        $${a} = $this->${b}Repository->find${cap(w())}($${w()}['${w()}'] ?? null);\n` +
      `        if ($${a} === null) {\n            throw new \\RuntimeException('${cap(w())} ${w()} not found: ' . $${b});\n        }\n` +
      `        return sprintf('%s-%d', $${a}->get${cap(w())}(), ${Math.floor(r() * 100000)});\n    }\n\n`;
  }
  return (s.slice(0, bytes - 2) + '\n}\n').slice(0, bytes);
}

/** Replaces the kit's 64 KiB vendor blobs by small files, so the tree holds about `target` files. */
function reshape(L: Layout, target: number): Shape {
  const blobs = join(L.code, 'vendor/phpborg/agent-assets/data');
  const before = count(L.code);
  let blobBytes = 0;
  let blobFiles = 0;
  if (existsSync(blobs)) {
    for (const f of readdirSync(blobs)) {
      blobBytes += statSync(join(blobs, f)).size;
      blobFiles++;
    }
  }
  const n = Math.max(0, target - (before.files - blobFiles));
  if (!n || !blobBytes) return { files: before.files, code_bytes: before.bytes, small_files_added: 0 };
  rmSync(blobs, { recursive: true, force: true });
  const r = rng(250);
  const per = Math.floor(blobBytes / n);
  for (let i = 0; i < n; i++) {
    const mod = `Module${Math.floor(i / 150)}`;
    const dir = join(L.code, 'vendor/phpborg/agent-assets/src', mod, i % 3 ? 'Service' : 'Entity');
    if (i % 150 === 0 || i % 150 < 3) mkdirSync(dir, { recursive: true });
    const size = i === n - 1 ? blobBytes - per * (n - 1) : per;
    writeFileSync(join(dir, `Asset${i}.php`), phpFile(r, `Phpborg\\AgentAssets\\${mod}`, `Asset${i}`, size));
  }
  const after = count(L.code);
  return { files: after.files, code_bytes: after.bytes, small_files_added: n };
}

export async function benchSandbox(root: string, sizeMiB: number, log: (s: string) => void): Promise<{ info: SandboxInfo; L: Layout; shape: Shape }> {
  const dir = join(root, `sandbox-${sizeMiB}`);
  const info = await upSandbox(dir, { size: sizeMiB, log: (s) => log(`sandbox: ${s}`) });
  const L = layout(info.dir);
  const marker = join(L.dir, 'bench-shape.json');
  let shape: Shape;
  if (existsSync(marker)) shape = JSON.parse(readFileSync(marker, 'utf8')) as Shape;
  else {
    const target = Math.round((TARGET_FILES_AT_250 * sizeMiB) / 250);
    log(`reshaping the code tree to about ${target} files`);
    shape = reshape(L, target);
    writeFileSync(marker, JSON.stringify(shape) + '\n');
  }
  return { info, L, shape };
}
