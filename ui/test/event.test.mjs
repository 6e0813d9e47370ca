// Tests of event.js against ui/testdata/events.json, the known answers the
// Go code generates with proto.Unmarshal (ui/vectors_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { decodeAuditEvent, ACTIONS, OUTCOMES, ACTOR_TYPES, TARGET_TYPES } from '../static/js/event.js';

const vectors = JSON.parse(await readFile(new URL('../testdata/events.json', import.meta.url), 'utf8'));
const unhex = (s) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

test('enum names are the .proto\'s', () => {
  assert.deepEqual(ACTIONS, vectors.enums.actions);
  assert.deepEqual(OUTCOMES, vectors.enums.outcomes);
  assert.deepEqual(ACTOR_TYPES, vectors.enums.actor_types);
  assert.deepEqual(TARGET_TYPES, vectors.enums.target_types);
});

test('events decode as proto.Unmarshal reads them', async (t) => {
  assert.ok(vectors.events.length >= 25);
  for (const e of vectors.events) {
    await t.test(e.name, () => {
      // JSON.parse makes "__proto__" an own property, as decodeAuditEvent does.
      assert.deepEqual(decodeAuditEvent(unhex(e.payload)), e.want);
    });
  }
});

test('malformed payloads are rejected, naming the byte offset', async (t) => {
  assert.ok(vectors.malformed.length >= 30);
  for (const e of vectors.malformed) {
    await t.test(e.name, () => {
      assert.throws(() => decodeAuditEvent(unhex(e.payload)), /^Error: malformed AuditEvent: .+ at byte \d+$/);
    });
  }
});

test('every field of the full event', () => {
  const ev = decodeAuditEvent(unhex(vectors.events.find((e) => e.name === 'every field set').payload));
  assert.equal(ev.occurred_at, 1700000000123);
  assert.equal(ev.occurred_at_nanos, 123456789);
  assert.equal(ev.actor.display_name, 'Zoë Ångström 山田太郎 🦊');
  assert.equal(ev.action, 'ACTION_ROLE_ASSIGNED');
  assert.deepEqual(ev.changes[0], { attribute: 'role', old_value: 'viewer', new_value: 'admin' });
  assert.equal(ev.labels.__proto__, 'a label'); // eslint-disable-line no-proto
  assert.ok(Object.hasOwn(ev.labels, '__proto__'));
  assert.equal(Object.getPrototypeOf(ev.labels), Object.prototype);
});

test('defaults and unknown enum values', () => {
  const empty = decodeAuditEvent(new Uint8Array());
  assert.equal(empty.occurred_at, null);
  assert.equal(empty.action, 'ACTION_UNSPECIFIED');
  assert.deepEqual(empty.labels, {});
  assert.deepEqual(empty.actor, { type: 'ACTOR_TYPE_UNSPECIFIED', id: '', display_name: '', source_ip: '', user_agent: '' });
  const unknown = decodeAuditEvent(Uint8Array.of(0x20, 99, 0x40, 7));
  assert.equal(unknown.action, 'ACTION_99');
  assert.equal(unknown.outcome, 'OUTCOME_7');
});

test('offsets in errors', () => {
  assert.throws(() => decodeAuditEvent(Uint8Array.of(0x0a, 0x01, 0x61, 0x0a, 0x05, 0x61)), /length 5 runs past the end of the data at byte 4$/);
  assert.throws(() => decodeAuditEvent(Uint8Array.of(0x0a, 0x01, 0x61, 0x0f)), /invalid wire type 7 at byte 3$/);
  assert.throws(() => decodeAuditEvent(Uint8Array.of(0x1a, 0x03, 0x12, 0x01, 0xff)), /string field is not valid UTF-8 at byte 3$/);
  assert.throws(() => decodeAuditEvent('not bytes'), TypeError);
});

test('occurred_at beyond what a Number holds in milliseconds', () => {
  // Go decodes any int64 seconds; JavaScript rejects what it cannot hold,
  // naming the first occurred_at field.
  const huge = [0x12, 0x0a, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]; // seconds 2^62
  assert.throws(() => decodeAuditEvent(Uint8Array.of(0x0a, 0x00, 0x12, 0x00, ...huge)), /occurred_at of 4611686018427387904 seconds is out of range at byte 3$/);
  assert.equal(decodeAuditEvent(Uint8Array.of(0x12, 0x06, 0x08, 0xff, 0xff, 0xff, 0xff, 0x07)).occurred_at, (2 ** 31 - 1) * 1000);
});

test('groups nested as deep as Go allows', () => {
  const nested = (n) => Uint8Array.from([...Array(n).fill(0x1b), ...Array(n).fill(0x1c)]); // field 3 groups
  assert.equal(decodeAuditEvent(nested(10001)).event_id, '');
  assert.throws(() => decodeAuditEvent(nested(10002)), /groups nested too deep/);
});
