// Unit tests of js/format.js: labels, times in a given zone, numbers, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  u64, actionLabel, outcomeLabel, targetTypeLabel, isoUTC, localTime, localInputToISO, age, appendRate, plural, describeError,
  timeLabels, keyText, keyFingerprint,
} from '../static/js/format.js';

const ms = Date.UTC(2026, 10, 26, 9, 1, 44, 259);

test('u64 takes protojson uint64 strings and refuses what a Number cannot hold', () => {
  assert.equal(u64('5'), 5);
  assert.equal(u64(7), 7);
  assert.equal(u64('9007199254740991'), Number.MAX_SAFE_INTEGER);
  for (const bad of ['9007199254740993', '-1', 'abc', '1.5', '', null, -3, 1.5]) assert.throws(() => u64(bad), /whole number/);
});

test('labels are words, not enum names', () => {
  assert.equal(actionLabel('ACTION_ROLE_ASSIGNED'), 'Role assigned');
  assert.equal(actionLabel('ACTION_GROUP_MEMBER_REMOVED'), 'Group member removed');
  assert.equal(actionLabel('ACTION_MFA_ENROLLED'), 'MFA enrolled');
  assert.equal(actionLabel('ACTION_CUSTOM', 'badge.issued'), 'Custom: badge.issued');
  assert.equal(actionLabel('ACTION_99'), '99');
  assert.equal(outcomeLabel('OUTCOME_DENIED'), 'Denied');
  assert.equal(targetTypeLabel('TARGET_TYPE_SERVICE_ACCOUNT'), 'Service account');
});

test('times: UTC for the title, the viewer zone for the text', () => {
  assert.equal(isoUTC(ms), '2026-11-26T09:01:44.259Z');
  assert.equal(localTime(ms, 'UTC'), '2026-11-26 09:01:44 UTC');
  assert.equal(localTime(ms, 'America/New_York'), '2026-11-26 04:01:44 EST');
  assert.match(localTime(ms, 'Asia/Kolkata'), /^2026-11-26 14:31:44 /);
  assert.equal(localTime(Date.UTC(2026, 0, 1, 0, 0, 0), 'UTC'), '2026-01-01 00:00:00 UTC');
});

test('times: the viewer zone by default, UTC in UTC mode, the other zone as the title', () => {
  const entry0 = Date.UTC(2026, 10, 20, 9, 0, 0);
  assert.deepEqual(timeLabels(entry0, false, 'America/New_York'), { text: '2026-11-20 04:00:00 EST', title: '2026-11-20 09:00:00.000 UTC' });
  assert.deepEqual(timeLabels(entry0, true, 'America/New_York'), { text: '2026-11-20 09:00:00 UTC', title: '2026-11-20 04:00:00 EST' });
  assert.deepEqual(timeLabels(ms, true, 'Asia/Kolkata').text, '2026-11-26 09:01:44 UTC');
  assert.match(timeLabels(ms, true, 'Asia/Kolkata').title, /^2026-11-26 14:31:44 /);
});

test('datetime-local values are read in the viewer zone and sent as UTC', () => {
  const tz = process.env.TZ;
  process.env.TZ = 'America/New_York';
  try {
    assert.equal(localInputToISO('2026-11-26T04:01'), '2026-11-26T09:01:00.000Z');
    assert.equal(localInputToISO('2026-07-01T04:01:05'), '2026-07-01T08:01:05.000Z');
    assert.equal(localInputToISO(''), '');
    assert.throws(() => localInputToISO('yesterday'));
  } finally {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  }
});

test('age and append rate', () => {
  assert.equal(age(0, 12000), '12 s ago');
  assert.equal(age(0, 130000), '2 min ago');
  assert.equal(age(0, 3 * 3600000), '3 h ago');
  assert.match(age(5000, 0), /future/);
  assert.equal(appendRate([]), 'not enough entries yet');
  assert.equal(appendRate([5]), 'not enough entries yet');
  assert.equal(appendRate([0, 1000, 2000]), '1.0 records/s over the last 3 entries');
  assert.equal(appendRate([0, 10]), '100 records/s over the last 2 entries');
  assert.equal(appendRate([3, 3]), '2 entries logged within the same millisecond');
  assert.equal(plural(1, 'entry', 'entries'), '1 entry');
  assert.equal(plural(1000, 'event'), '1,000 events');
});

test('verifier keys: pasted line breaks dropped, a fingerprint to compare by eye', () => {
  const vkey = 'example.com/test-log+1a2b3c4d+AeBy0DQPRjBS8bMB3Cg4zSxFXSeGzBeyKLBdiKFUEnok';
  assert.equal(keyText(' example.com/test-log+1a2b3c4d+AeBy0DQPRjBS8bMB3C\ng4zSxFXSeGzBeyKLBdiKFUEnok\n'), vkey);
  assert.equal(keyFingerprint(vkey), 'example.com/test-log · 1a2b3c4d · AeBy0D…FUEnok');
  assert.equal(keyFingerprint('a+0000ABCD+AR+/0DQPRjBS8bMB3Cg4zSxFXSeGzBeyKLBdiKFUEn+k'), 'a · 0000ABCD · AR+/0D…FUEn+k');
  assert.throws(() => keyFingerprint('not a key'));
});

test('errors say what to do next', () => {
  const denied = describeError({ code: 'PermissionDenied', message: 'principal "r" (roles reader) lacks capability "read_payloads"' });
  assert.match(denied, /lacks capability "read_payloads"/);
  assert.match(denied, /Ask the operator/);
  assert.match(describeError({ code: 'Unauthenticated', message: 'x' }), /sign in again/);
  assert.match(describeError({ code: 'Unavailable', message: 'down' }), /Try again/);
  assert.match(describeError(Object.assign(new Error('bad proof'), { name: 'VerifyError' })), /^Verification failed: bad proof/);
});
