// Unit tests of js/alarm.js: the evidence of a fork, rollback or
// inconsistency kept in local storage until the user clears it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alarmKey, alarmOf, readAlarm, saveAlarm, clearAlarm, alarmText, alarmTitle, alarmFileName } from '../static/js/alarm.js';

// A Storage stand-in (localStorage's getItem, setItem, removeItem).
function storage(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k), m };
}

const origin = 'example.com/log';
const trustedNote = 'example.com/log\n5\nAAAA\n\n— example.com/log sig1\n';
const shownNote = 'example.com/log\n5\nBBBB\n\n— example.com/log sig2\n';
const fork = {
  name: 'TrustError', kind: 'fork', message: 'POSSIBLE FORK: this browser trusted size 5 (root AAAA)',
  old: { size: 5, root: 'AAAA', seen_at: '2026-11-20T09:00:00.000Z', checkpoint: trustedNote },
  now: { size: 5, root: 'BBBB', checkpoint: shownNote },
};
const at = new Date(Date.UTC(2026, 10, 21, 10, 0, 0));

test('a fork, rollback or inconsistency is evidence; a bad signature is not', () => {
  const a = alarmOf(fork, at);
  assert.deepEqual(a, {
    kind: 'fork', message: fork.message, detected_at: '2026-11-21T10:00:00.000Z',
    trusted: { size: 5, root: 'AAAA', seen_at: '2026-11-20T09:00:00.000Z', checkpoint: trustedNote },
    shown: { size: 5, root: 'BBBB', checkpoint: shownNote },
  });
  for (const kind of ['rollback', 'inconsistent']) assert.equal(alarmOf({ ...fork, kind }, at).kind, kind);
  assert.equal(alarmOf({ ...fork, kind: 'signature' }, at), null);
  assert.equal(alarmOf({ ...fork, old: null, now: null }, at), null, 'no checkpoints, no evidence');
  assert.equal(alarmOf(null), null);
});

test('a state saved before checkpoint texts were kept still makes an alarm', () => {
  const old = { size: 5, root: 'AAAA', seen_at: '2026-11-20T09:00:00.000Z' }; // tlogd.last.<origin> of an older page
  const a = alarmOf({ ...fork, old }, at);
  assert.equal(a.trusted.checkpoint, null);
  assert.match(alarmText(origin, a), /not kept/);
  assert.ok(alarmText(origin, a).includes(shownNote.trimEnd()));
});

test('the alarm is stored per origin, the first one kept until cleared', () => {
  const s = storage();
  assert.equal(readAlarm(s, origin), null);
  const a = alarmOf(fork, at);
  assert.deepEqual(saveAlarm(s, origin, a), a);
  assert.ok(s.m.has(alarmKey(origin)) && alarmKey(origin) === 'tlogd.alarm.example.com/log');
  assert.deepEqual(readAlarm(s, origin), a);
  assert.equal(readAlarm(s, 'other.example/log'), null, 'another log has no alarm');
  const later = alarmOf({ ...fork, kind: 'rollback' }, new Date(at.getTime() + 10000));
  assert.deepEqual(saveAlarm(s, origin, later), a, 'a later alarm does not replace the first evidence');
  assert.deepEqual(readAlarm(s, origin), a);
  clearAlarm(s, origin);
  assert.equal(readAlarm(s, origin), null);
  assert.equal(saveAlarm(s, origin, null), null);
});

test('a stored alarm that cannot be read is still an alarm', () => {
  for (const raw of ['{not json', '{}', '42', 'null']) {
    const a = readAlarm(storage({ [alarmKey(origin)]: raw }), origin);
    assert.equal(a.kind, 'unknown', raw);
    assert.equal(a.trusted, null);
  }
  const partial = readAlarm(storage({ [alarmKey(origin)]: JSON.stringify({ kind: 'fork', message: 'm', trusted: { size: 'x' } }) }), origin);
  assert.deepEqual(partial, { kind: 'fork', message: 'm', detected_at: null, trusted: null, shown: null });
  const broken = { getItem() { throw new Error('storage off'); } };
  assert.equal(readAlarm(broken, origin), null);
});

test('the evidence file has both signed checkpoints', () => {
  const a = alarmOf(fork, at);
  const text = alarmText(origin, a);
  assert.match(text, /^tlogd dashboard alarm: POSSIBLE FORK\n/);
  assert.match(text, /Log: example\.com\/log\n/);
  assert.match(text, /Detected: 2026-11-21T10:00:00\.000Z\n/);
  assert.ok(text.includes('Checkpoint this browser trusted (size 5, root AAAA, seen 2026-11-20T09:00:00.000Z):\n' + trustedNote));
  assert.ok(text.includes('Checkpoint the log showed (size 5, root BBBB):\n' + shownNote));
  assert.equal(alarmTitle({ kind: 'rollback' }), 'POSSIBLE ROLLBACK OR FORK');
  assert.equal(alarmFileName(origin, a), 'tlogd-alarm-example.com_log-2026-11-21T10-00-00-000Z.txt');
});
