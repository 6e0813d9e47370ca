// Unit tests of js/checks.js: the query filters, drift items and baselines
// the page checks itself (as client.matches, client.verifyDriftItem and
// tlogctl's parseBaseline).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  queryMismatch, logTimeMismatch, grantOf, driftItemProblem, parseBaseline, driftKey, compareKeys,
} from '../static/js/checks.js';

const ev = (o = {}) => ({
  tenant: 'acme', actor: { id: 'admin' }, target: { id: 'alice' }, action: 'ACTION_ROLE_ASSIGNED', outcome: 'OUTCOME_SUCCESS',
  occurred_at: Date.UTC(2026, 10, 26, 9), changes: [{ attribute: 'role', old_value: 'viewer', new_value: 'admin' }], ...o,
});

test('queryMismatch checks what an event shows by itself', () => {
  assert.equal(queryMismatch({}, ev()), '');
  assert.equal(queryMismatch({ tenant: 'acme', actor_id: 'admin', target_id: 'alice', subject_id: 'alice' }, ev()), '');
  assert.match(queryMismatch({ tenant: 'other' }, ev()), /tenant/);
  assert.match(queryMismatch({ subject_id: 'alice' }, ev()), /tenant/, 'ids are per tenant: empty tenant is the tenant-less namespace');
  assert.match(queryMismatch({ tenant: 'acme', subject_id: 'bob' }, ev()), /does not name "bob"/);
  assert.match(queryMismatch({ tenant: 'acme', actor_id: 'alice' }, ev()), /actor/);
  assert.match(queryMismatch({ actions: ['ACTION_LOGIN_FAILED'] }, ev()), /action/);
  assert.equal(queryMismatch({ actions: ['ACTION_LOGIN_FAILED', 'ACTION_ROLE_ASSIGNED'] }, ev()), '');
  assert.match(queryMismatch({ outcome: 'OUTCOME_DENIED' }, ev()), /outcome/);
  assert.equal(queryMismatch({ occurred_from: '2026-11-26T09:00:00Z', occurred_before: '2026-11-26T09:00:00.001Z' }, ev()), '');
  assert.match(queryMismatch({ occurred_before: '2026-11-26T09:00:00Z' }, ev()), /occurred after/);
});

test('logTimeMismatch: [logged_from, logged_before)', () => {
  const t = Date.UTC(2026, 10, 26, 9);
  assert.equal(logTimeMismatch({ logged_from: '2026-11-26T09:00:00Z', logged_before: '2026-11-26T09:00:00.001Z' }, t), '');
  assert.match(logTimeMismatch({ logged_from: '2026-11-26T09:00:00.001Z' }, t), /before/);
  assert.match(logTimeMismatch({ logged_before: '2026-11-26T09:00:00Z' }, t), /after/);
});

test('grantOf follows the drift convention', () => {
  assert.deepEqual(grantOf(ev()), { subject: 'alice', kind: 'role', name: 'admin', sign: 1 });
  assert.deepEqual(grantOf(ev({ action: 'ACTION_ROLE_REVOKED', changes: [{ attribute: 'role', old_value: 'viewer', new_value: '' }] })),
    { subject: 'alice', kind: 'role', name: 'viewer', sign: -1 });
  assert.deepEqual(grantOf(ev({ action: 'ACTION_ROLE_ASSIGNED', changes: [{ attribute: 'role', old_value: 'x', new_value: '' }] })),
    { subject: 'alice', kind: 'role', name: 'x', sign: 1 });
  assert.equal(grantOf(ev({ changes: [{ attribute: 'group', new_value: 'g' }] })), null);
  assert.equal(grantOf(ev({ action: 'ACTION_LOGIN_FAILED' })), null);
});

test('driftItemProblem checks each item against the baseline and its event', () => {
  const b = { tenant: 'acme', subjects: { alice: { roles: ['viewer'], permissions: [], groups: [] } } };
  const item = (o) => ({ subject_id: 'alice', kind: 'GRANT_KIND_ROLE', name: 'admin', status: 'DRIFT_STATUS_UNAPPROVED', event: {}, ...o });
  assert.equal(driftItemProblem(b, item(), ev()), '');
  assert.match(driftItemProblem(b, item({ name: 'viewer' }), ev()), /baseline approves/);
  assert.match(driftItemProblem(b, item(), ev({ tenant: 'other' })), /not a successful grant event/);
  assert.match(driftItemProblem(b, item(), ev({ outcome: 'OUTCOME_FAILURE' })), /not a successful grant event/);
  assert.match(driftItemProblem(b, item(), ev({ target: { id: 'bob' } })), /does not make it unapproved/);
  const never = item({ name: 'viewer', status: 'DRIFT_STATUS_NEVER_GRANTED', event: null });
  assert.equal(driftItemProblem(b, never, null), '');
  assert.match(driftItemProblem(b, { ...never, event: {} }, null), /cites an event/);
  const revoked = item({ name: 'viewer', status: 'DRIFT_STATUS_REVOKED' });
  assert.equal(driftItemProblem(b, revoked, ev({ action: 'ACTION_ROLE_REVOKED', changes: [{ attribute: 'role', old_value: 'viewer' }] })), '');
  assert.equal(driftItemProblem(b, revoked, ev({ action: 'ACTION_ACCOUNT_DELETED', changes: [] })), '');
  assert.match(driftItemProblem(b, revoked, ev()), /does not make it revoked/);
  assert.match(driftItemProblem(b, item({ kind: 'GRANT_KIND_UNSPECIFIED' }), ev()), /unknown kind/);
});

test('drift items sort by subject, kind name, name', () => {
  const k = (s, kind, n) => driftKey({ subject_id: s, kind, name: n });
  assert.equal(compareKeys(k('a', 'GRANT_KIND_ROLE', 'x'), k('b', 'GRANT_KIND_GROUP', 'a')), -1);
  assert.equal(compareKeys(k('a', 'GRANT_KIND_GROUP', 'z'), k('a', 'GRANT_KIND_PERMISSION', 'a')), -1);
  assert.equal(compareKeys(k('a', 'GRANT_KIND_ROLE', 'x'), k('a', 'GRANT_KIND_ROLE', 'x')), 0);
});

test('parseBaseline reads the JSON form strictly', () => {
  assert.deepEqual(parseBaseline('{"tenant":"acme","subjects":{"alice":{"roles":["viewer"]},"svc":null}}'), {
    tenant: 'acme', subjects: { alice: { roles: ['viewer'], permissions: [], groups: [] }, svc: { roles: [], permissions: [], groups: [] } },
  });
  assert.throws(() => parseBaseline('tenant: acme\nsubjects:\n  alice: {roles: [viewer]}\n'), /convert YAML baselines to JSON/);
  assert.throws(() => parseBaseline('{"tenant":"acme","subject":{}}'), /unknown field "subject"/);
  assert.throws(() => parseBaseline('{"subjects":{"alice":{"role":["x"]}}}'), /unknown field "role"/);
  assert.throws(() => parseBaseline('{"subjects":{"alice":{"roles":[""]}}}'), /roles\[0\]: empty/);
  assert.throws(() => parseBaseline('{"subjects":{"":{}}}'), /empty subject id/);
  assert.throws(() => parseBaseline('[]'), /JSON object/);
  assert.throws(() => parseBaseline('{"subjects":{"alice":{"roles":"viewer"}}}'), /list of names/);
});
