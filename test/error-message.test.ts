// errorMessage: the text of anything a catch block receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorMessage } from '../runtime/errors.ts';

test('errorMessage: Error, string, {message}, anything else', () => {
  assert.equal(errorMessage(new TypeError('bad type')), 'bad type');
  assert.equal(errorMessage(Object.assign(new Error('gone'), { code: 'ENOENT' })), 'gone');
  assert.equal(errorMessage('plain text'), 'plain text');
  assert.equal(errorMessage({ message: 'from a worker', code: 'X' }), 'from a worker');
  assert.equal(errorMessage({ message: 42 }), '[object Object]');
  assert.equal(errorMessage(undefined), 'undefined');
  assert.equal(errorMessage(null), 'null');
  assert.equal(errorMessage(7), '7');
  assert.equal(errorMessage(Object.create(null)), '[object Object]');
});
