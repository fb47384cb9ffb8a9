// MOLT_BUNDLED's decision at start (policy.decideBundled): the image's release
// against what is installed and what is blocked -> install or skip, with why.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBundled } from '../../src/update/policy.js';

const decide = (bundled: string, current?: string, blocked: string[] = []) => decideBundled({ bundled, current, blocked: new Set(blocked) });

describe('decideBundled', () => {
  test('first start: nothing installed -> install, semver or not', () => {
    assert.deepEqual(decide('1.0.0'), { install: true, why: 'nothing is installed' });
    assert.equal(decide('sha-0123abcd').install, true);
    assert.equal(decide('2.0.0-rc.1').install, true, 'a prerelease the image carries is what was deployed');
  });

  test('a newer image on an older volume: newer by semver -> install', () => {
    assert.deepEqual(decide('1.2.0', '1.1.0'), { install: true, why: 'newer than current 1.1.0' });
    assert.equal(decide('0.10.0', '0.9.0').install, true, 'semver order, not string order');
    assert.equal(decide('2.0.0', '1.9.9').install, true, 'a new major too: the policy limits the source, not the image');
    assert.equal(decide('1.0.0', '1.0.0-rc.2').install, true);
  });

  test('never a downgrade, never the same version again', () => {
    assert.deepEqual(decide('1.0.0', '1.1.0'), { install: false, why: 'current 1.1.0 is newer (never a downgrade)' });
    assert.equal(decide('0.9.0', '0.10.0').install, false);
    assert.equal(decide('1.0.0-rc.2', '1.0.0').install, false);
    assert.deepEqual(decide('1.1.0', '1.1.0'), { install: false, why: '1.1.0 is already current' });
    assert.equal(decide('v1.1.0', '1.1.0').install, false, "a leading 'v' names the same version");
    assert.deepEqual(decide('1.1.0+b', '1.1.0+a'), { install: false, why: 'current 1.1.0+a is the same version' });
  });

  test('a blocked version stays blocked, installed or not', () => {
    assert.deepEqual(decide('1.2.0', undefined, ['1.2.0']), { install: false, why: '1.2.0 is blocked' });
    assert.equal(decide('1.2.0', '1.1.0', ['1.2.0']).install, false);
    assert.equal(decide('1.2.0', '1.1.0', ['v1.2.0']).install, false);
    assert.equal(decide('1.2.0', '1.1.0', ['1.1.5']).install, true, 'another blocked version is no reason');
  });

  test('labels that cannot be ordered never replace a current', () => {
    assert.equal(decide('sha-bbbb', 'sha-aaaa').install, false);
    assert.equal(decide('1.2.0', 'sha-aaaa').install, false);
    assert.match(decide('nightly', '1.0.0').why, /cannot be ordered/);
  });
});
