import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { errorText, errnoName } from '../../src/sv/errors.js';

test('errors read as runit prints them, by code or by number', () => {
  assert.equal(errorText('ENOENT'), 'file does not exist');
  assert.equal(errorText('ENXIO'), 'device not configured');
  assert.equal(errorText('EACCES'), 'access denied');
  assert.equal(errorText('ENOTDIR'), 'not a directory');
  assert.equal(errorText('ENOEXEC'), 'exec format error');
  assert.equal(errorText(os.constants.errno.EAGAIN), 'temporary failure');
  assert.equal(errorText(0), 'no error');
  assert.equal(errorText('EWHATEVER'), 'unknown error');
});

test('errno numbers map back to their names', () => {
  assert.equal(errnoName(os.constants.errno.ENOENT), 'ENOENT');
  assert.equal(errnoName(-12345), undefined);
});
