// README is part of the contract: every setting the code reads is documented,
// and the two set-up commands stay at its top.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { configReference } from '../../src/update/config.js';
import { repoRoot } from '../helpers/molt.js';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

test('every configuration variable is in the README reference', () => {
  for (const { name } of configReference) assert.ok(readme.includes(`\`${name}\``), `${name} documented`);
});

test('the README opens with the demo and the test command', () => {
  const head = readme.slice(0, 1500);
  assert.match(head, /npm ci && npm start/);
  assert.match(head, /npm ci && npm test/);
});
