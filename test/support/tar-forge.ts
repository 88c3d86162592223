// A tiny tar writer for the hostile-input tests: entries no well-behaved tool would write (escaping
// paths and links, device files, a file where a folder is expected), and the entries of a real archive
// read back so that a test can edit them.
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runOk } from '../../runtime/exec.ts';

export type Entry = { path: string; type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev'; mode: number; data?: Buffer; link?: string };
const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', dir: '5' } as const;

export function header(name: string, size: number, type: string, mode: number, link = '', dev = false): Buffer {
  const b = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => b.write(s.slice(0, len), off, len, 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  put(name, 0, 100);
  put(oct(mode, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put(link, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  if (dev) {
    put(oct(1, 8), 329, 8);
    put(oct(3, 8), 337, 8);
  }
  let sum = 0;
  for (const x of b) sum += x;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}
export const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.from(`${len}${body}`);
}
export function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? e.data ?? Buffer.alloc(0) : Buffer.alloc(0);
    const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    if (Buffer.byteLength(name) > 99 || Buffer.byteLength(e.link ?? '') > 99) {
      const pax = Buffer.concat([paxRecord('path', name), ...(e.link ? [paxRecord('linkpath', e.link)] : [])]);
      parts.push(header('PaxHeader', pax.length, 'x', 0o644), pax, pad(pax.length));
    }
    parts.push(header(name, data.length, TYPEFLAG[e.type], e.mode, e.link ?? '', e.type === 'chardev'), data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

/** The entries of a real (plain) archive, in order, read back with GNU tar. */
/** The entries of a gzipped tar, extracted with tar(1) into a scratch dir (removed again). */
export async function entriesOf(file: string): Promise<{ root: string; entries: Entry[] }> {
  const names = (await runOk('tar', ['-tzf', file])).trim().split('\n');
  const dir = mkdtempSync(join(tmpdir(), 'keeper-entries-'));
  await runOk('tar', ['-xzf', file, '-C', dir]);
  const entries: Entry[] = names.map((n) => {
    const p = join(dir, n);
    const st = lstatSync(p);
    const path = n.replace(/\/$/, '');
    if (st.isDirectory()) return { path, type: 'dir', mode: st.mode & 0o7777 };
    if (st.isSymbolicLink()) return { path, type: 'symlink', mode: 0o777, link: readlinkSync(p) };
    return { path, type: 'file', mode: st.mode & 0o7777, data: readFileSync(p) };
  });
  rmSync(dir, { recursive: true, force: true });
  return { root: names[0].split('/')[0], entries };
}
