import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, prefixed } from '../../src/supervise/lines.js';

function collect(maxLine?: number) {
  const lines: Buffer[] = [];
  const s = new LineSplitter((l) => lines.push(Buffer.from(l)), maxLine);
  return { s, lines, text: () => lines.map((l) => l.toString('latin1')) };
}

test('complete lines come out whole, however the chunks fall', () => {
  const { s, text } = collect();
  for (const c of ['he', 'llo\nwor', 'ld\n', '\n', 'tail']) s.push(Buffer.from(c));
  assert.deepEqual(text(), ['hello', 'world', '']);
  s.end();
  assert.deepEqual(text(), ['hello', 'world', '', 'tail'], 'a partial line is flushed at the end');
});

test('over-long lines are cut at maxLine so memory stays bounded', () => {
  const { s, lines } = collect(1024);
  const big = Buffer.alloc(5000, 0x61);
  s.push(big);
  assert.deepEqual(lines.map((l) => l.length), [1024, 1024, 1024, 1024]);
  s.push(Buffer.from('\n'));
  assert.deepEqual(lines.map((l) => l.length), [1024, 1024, 1024, 1024, 904]);
  const exact = collect(4);
  exact.s.push(Buffer.from('abcd\n'));
  assert.deepEqual(exact.text(), ['abcd'], 'a line of exactly maxLine is not followed by an empty piece');
});

test('bytes pass through unchanged, invalid UTF-8 included', () => {
  const { s, lines } = collect();
  const raw = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x0a]);
  s.push(raw);
  assert.deepEqual(lines[0], raw.subarray(0, 5));
  assert.deepEqual(prefixed(Buffer.from('[x] '), lines[0]!), Buffer.concat([Buffer.from('[x] '), raw]));
});
