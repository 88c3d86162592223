// runtime/remove-tree.ts: rm -rf with flat memory, for staging trees and the code dir moved aside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from '../runtime/remove-tree.ts';

const base = mkdtempSync(join(tmpdir(), 'keeper-remove-tree-'));
test.after(() => rmSync(base, { recursive: true, force: true }));

test('a deep tree with files, empty folders and links goes; what a link points at stays', async () => {
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep.txt'), 'kept');
  const tree = join(base, 'tree');
  for (let d = 0; d < 5; d++) {
    const dir = join(tree, ...Array.from({ length: d + 1 }, (_, i) => `level${i}`));
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 150; f++) writeFileSync(join(dir, `f${f}.php`), `<?php // ${d}/${f}`);
    mkdirSync(join(dir, 'empty'));
  }
  symlinkSync(outside, join(tree, 'level0', 'link-to-dir'));
  symlinkSync(join(outside, 'keep.txt'), join(tree, 'level0', 'link-to-file'));
  symlinkSync('does-not-exist', join(tree, 'dangling'));
  const readOnlyFile = join(tree, 'level0', 'ro.txt');
  writeFileSync(readOnlyFile, 'x');
  chmodSync(readOnlyFile, 0o400);

  await removeTree(tree);

  assert.equal(existsSync(tree), false);
  assert.equal(readFileSync(join(outside, 'keep.txt'), 'utf8'), 'kept');
});

test('a single file, a link and a missing path', async () => {
  const file = join(base, 'single.txt');
  writeFileSync(file, 'x');
  await removeTree(file);
  assert.equal(existsSync(file), false);

  const target = join(base, 'target');
  mkdirSync(join(target, 'inner'), { recursive: true });
  const link = join(base, 'link');
  symlinkSync(target, link);
  await removeTree(link);
  assert.equal(existsSync(link), false);
  assert.equal(existsSync(join(target, 'inner')), true, 'the link is removed, never what it points at');

  await removeTree(join(base, 'never-there'));
});

test('a failure other than "already gone" is reported', { skip: process.getuid?.() === 0 && 'root deletes from a read-only folder anyway' }, async () => {
  const dir = join(base, 'locked');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'sub', 'f'), 'x');
  chmodSync(join(dir, 'sub'), 0o500);
  await assert.rejects(removeTree(dir), { code: 'EACCES' });
  chmodSync(join(dir, 'sub'), 0o700);
});
