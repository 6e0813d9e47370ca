// Unit tests of js/state.js: the trusted checkpoint only moves forward,
// and unproven checkpoints are kept until proven.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trustedKey, unprovenKey, readTrusted, saveTrusted, readUnproven, keepUnproven, dropUnproven, forgetDropped, pending, unprovenText, MAX_UNPROVEN } from '../static/js/state.js';

function storage(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), m };
}

const origin = 'example.com/log';
const vkey = 'example.com/log+1a2b3c4d+AQ==';
const at = new Date(Date.UTC(2026, 10, 21, 10, 0, 0));
const cp = (size, root = 'R' + size) => ({ size, root, checkpoint: `${origin}\n${size}\n${root}\n\n— ${origin} sig\n` });

test('the trusted state moves forward only', () => {
  const s = storage();
  assert.equal(readTrusted(s, origin, vkey), null);
  assert.deepEqual(saveTrusted(s, origin, vkey, cp(5), at), { size: 5, root: 'R5', seen_at: '2026-11-21T10:00:00.000Z', vkey, checkpoint: cp(5).checkpoint });
  assert.equal(saveTrusted(s, origin, vkey, cp(9)).size, 9);
  // Another tab moved it to 9: this tab's 7 does not roll it back.
  const kept = saveTrusted(s, origin, vkey, cp(7));
  assert.equal(kept.size, 9);
  assert.equal(readTrusted(s, origin, vkey).size, 9);
  // Another root at the stored size is not stored: the caller sees the
  // stored root, and calls it a fork.
  const same = saveTrusted(s, origin, vkey, cp(9, 'OTHER'));
  assert.equal(same.root, 'R9');
  assert.equal(readTrusted(s, origin, vkey).root, 'R9');
});

test('a trusted state under another key, or unreadable, is not used', () => {
  const s = storage({ [trustedKey(origin)]: JSON.stringify({ size: 9, root: 'R9', vkey: 'other+00000000+AQ==' }) });
  assert.equal(readTrusted(s, origin, vkey), null);
  assert.equal(saveTrusted(s, origin, vkey, cp(3)).size, 3, 'another key\'s state is replaced');
  for (const bad of ['{', 'null', '{"size":-1,"root":"R"}', '{"size":1.5,"root":"R"}', '{"size":1}']) {
    assert.equal(readTrusted(storage({ [trustedKey(origin)]: bad }), origin, vkey), null, bad);
  }
  // States saved before keys were recorded hold for any key.
  assert.equal(readTrusted(storage({ [trustedKey(origin)]: '{"size":4,"root":"R4"}' }), origin, vkey).size, 4);
});

test('unproven checkpoints are kept, counted and dropped', () => {
  const s = storage();
  assert.deepEqual(readUnproven(s, origin, vkey), { items: [], dropped: 0 });
  keepUnproven(s, origin, vkey, cp(10), new Error('the log is busy'), at);
  const later = new Date(at.getTime() + 60000);
  let list = keepUnproven(s, origin, vkey, cp(10), new Error('deadline exceeded'), later);
  assert.deepEqual(list.items, [{ size: 10, root: 'R10', checkpoint: cp(10).checkpoint, first_seen: at.toISOString(), last_failed: later.toISOString(), failures: 2, error: 'deadline exceeded' }]);
  keepUnproven(s, origin, vkey, cp(10, 'X'), new Error('busy '.repeat(100000)), at);
  assert.ok(readUnproven(s, origin, vkey).items[1].error.length <= 300, 'the server\'s words are bounded');
  assert.equal(readUnproven(s, origin, vkey).items.length, 2, 'another root at the same size is another checkpoint');
  assert.deepEqual(readUnproven(s, origin, 'other+00000000+AQ=='), { items: [], dropped: 0 }, 'another key sees none');
  list = dropUnproven(s, origin, vkey, cp(10));
  assert.deepEqual(list.items.map((i) => i.root), ['X']);
  dropUnproven(s, origin, vkey, cp(10, 'X'));
  assert.equal(s.m.has(unprovenKey(origin)), false, 'an empty list is removed');
});

test('unproven checkpoints are bounded', () => {
  const s = storage();
  for (let i = 0; i < MAX_UNPROVEN + 3; i++) keepUnproven(s, origin, vkey, cp(100 + i), 'busy', at);
  let list = readUnproven(s, origin, vkey);
  assert.equal(list.items.length, MAX_UNPROVEN);
  assert.equal(list.dropped, 3);
  assert.equal(list.items[0].size, 100, 'the first are kept');
  assert.match(unprovenText(origin, null, list), /3 more were seen and not kept/);
  for (const i of list.items) dropUnproven(s, origin, vkey, i);
  // What was not kept can never be proven: the count stays, and keeps the
  // log unproven, until the user forgets it.
  list = readUnproven(s, origin, vkey);
  assert.deepEqual(list, { items: [], dropped: 3 });
  assert.equal(pending(list), true);
  list = forgetDropped(s, origin, vkey);
  assert.deepEqual(list, { items: [], dropped: 0 });
  assert.equal(pending(list), false);
  assert.equal(s.m.has(unprovenKey(origin)), false);
});

test('the unproven checkpoints as a file hold every signed note', () => {
  const s = storage();
  keepUnproven(s, origin, vkey, cp(10), new Error('the log is busy'), at);
  keepUnproven(s, origin, vkey, cp(11), new Error('the log is busy'), at);
  const trusted = saveTrusted(s, origin, vkey, cp(9), at);
  const text = unprovenText(origin, trusted, readUnproven(s, origin, vkey));
  assert.equal(text.split(`— ${origin} sig`).length - 1, 3);
  assert.match(text, /Log: example\.com\/log/);
  assert.match(text, /Checkpoint this browser trusts \(size 9, root R9, since 2026-11-21T10:00:00\.000Z\)/);
  assert.match(text, /Unproven checkpoint \(size 11, root R11\), first seen 2026-11-21T10:00:00\.000Z, 1 failed check\(s\), last error: the log is busy/);
  assert.doesNotMatch(text, /not kept/);
});

test('unreadable unproven lists are empty, and bad items are skipped', () => {
  for (const bad of ['{', 'null', '{"vkey":"x"}', JSON.stringify({ vkey, items: 'no' })]) {
    assert.deepEqual(readUnproven(storage({ [unprovenKey(origin)]: bad }), origin, vkey), { items: [], dropped: 0 }, bad);
  }
  const s = storage({ [unprovenKey(origin)]: JSON.stringify({ vkey, items: [{ size: 'x' }, cp(3)], dropped: -1 }) });
  assert.deepEqual(readUnproven(s, origin, vkey), { items: [cp(3)], dropped: 0 });
});
