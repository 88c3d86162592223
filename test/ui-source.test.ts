// The web UI's sources without a browser: every string exists in French and English (and every
// job step label too), and the Vue + TypeScript sources type-check (vue-tsc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { en, stepsEn } from '../functions/ui/src/locales/en.ts';
import { fr, stepsFr } from '../functions/ui/src/locales/fr.ts';
import { run } from '../runtime/exec.ts';

const ROOT = join(import.meta.dirname, '..');

function keys(o: unknown, prefix = ''): string[] {
  if (typeof o !== 'object' || o === null) return [prefix];
  return Object.entries(o).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}

function leaves(o: unknown, prefix = ''): [string, string][] {
  if (typeof o === 'string') return [[prefix, o]];
  if (typeof o !== 'object' || o === null) return [];
  return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

test('French and English have the same strings, none empty, same placeholders', () => {
  assert.deepEqual(keys(fr).sort(), keys(en).sort());
  assert.deepEqual(Object.keys(stepsFr).sort(), Object.keys(stepsEn).sort());
  const enMap = new Map(leaves(en));
  const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const [k, v] of leaves(fr)) {
    assert.ok(v.trim() !== '', `fr ${k} is empty`);
    assert.deepEqual(placeholders(v), placeholders(enMap.get(k) ?? ''), `placeholders of ${k}`);
    assert.equal(v.split('|').length, (enMap.get(k) ?? '').split('|').length, `plural forms of ${k}`);
  }
});

test('the UI sources type-check (vue-tsc)', { timeout: 120_000 }, async () => {
  const r = await run(process.execPath, [join(ROOT, 'node_modules', 'vue-tsc', 'bin', 'vue-tsc.js'), '--noEmit', '-p', join(ROOT, 'functions', 'ui', 'tsconfig.json')], { cwd: ROOT });
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('French typography: a label is followed by the locale\'s colon, never a bare ":" after a template', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const dir = join(ROOT, 'functions', 'ui', 'src');
  const vue = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? vue(join(d, e.name)) : e.name.endsWith('.vue') ? [join(d, e.name)] : []));
  for (const f of vue(dir)) {
    const template = readFileSync(f, 'utf8').split('<template>').slice(1).join('<template>');
    assert.doesNotMatch(template, /\}\}:/, `${f}: use {{ t('common.colon') }} after a label`);
  }
  assert.equal(fr.common.colon, '\u00a0:');
  assert.equal(en.common.colon, ':');
  // French strings put a (no-break) space before ":", ";", "?" and "!"
  for (const [k, v] of leaves(fr)) assert.doesNotMatch(v, /[^\s\u00a0\u202f]:(\s|$)/, `fr ${k}: "${v}"`);
});
