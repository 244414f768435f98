import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withReservedPorts } from './reserved-ports.js';

test('ports are added to the reserved list without dropping or repeating what is there', () => {
  assert.equal(withReservedPorts('', [44334, 44501]), '44334,44501');
  assert.equal(withReservedPorts('8080,9000-9100\n', [44334]), '8080,9000-9100,44334');
  assert.equal(withReservedPorts('44330-44340', [44334]), '44330-44340');
  assert.equal(withReservedPorts('44333,44335', [44334]), '44333-44335');
  assert.equal(withReservedPorts('', [0, 70000, 1.5]), '');
});
