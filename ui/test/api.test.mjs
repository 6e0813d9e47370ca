// Unit tests of js/api.js: a 401 ends the session only when the server
// says the session is gone too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rpc, onSessionEnded, LOG } from '../static/js/api.js';

// answer stubs fetch: each path answers with its [status, body].
function answer(routes) {
  const asked = [];
  globalThis.fetch = async (url) => {
    asked.push(url);
    const [status, body] = routes[url];
    return { status, ok: status < 300, statusText: '', text: async () => JSON.stringify(body) };
  };
  return asked;
}

test('a 401 from a session that is still signed in is a refusal, not a sign-out', async () => {
  let ended = 0;
  onSessionEnded(() => { ended++; });
  const asked = answer({
    '/ui/api/rpc/tlog.v1.LogService/GetEntries': [401, { code: 'Unauthenticated', message: 'lacks something' }],
    '/ui/api/session': [200, { principal: 'r', roles: ['reader'], capabilities: ['read'], csrf_token: 'x' }],
  });
  await assert.rejects(rpc(LOG + 'GetEntries', {}), (e) => e.status === 401 && e.code === 'PermissionDenied' && e.message === 'lacks something');
  assert.equal(ended, 0);
  assert.deepEqual(asked, ['/ui/api/rpc/tlog.v1.LogService/GetEntries', '/ui/api/session']);
});

test('a 401 when the session is gone ends it', async () => {
  let ended = 0;
  onSessionEnded(() => { ended++; });
  answer({
    '/ui/api/rpc/tlog.v1.LogService/GetEntries': [401, { code: 'Unauthenticated', message: 'not signed in, or the session expired: sign in again' }],
    '/ui/api/session': [401, { code: 'Unauthenticated', message: 'not signed in' }],
  });
  await assert.rejects(Promise.all([rpc(LOG + 'GetEntries', {}), rpc(LOG + 'GetEntries', {})]), (e) => e.code === 'Unauthenticated');
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ended, 2, 'each refused call reports it (the app ignores it once signed out)');
});

test('a 403 never ends the session', async () => {
  let ended = 0;
  onSessionEnded(() => { ended++; });
  const asked = answer({ '/ui/api/rpc/tlog.v1.AuditService/QueryEvents': [403, { code: 'PermissionDenied', message: 'lacks capability "read_payloads"' }] });
  await assert.rejects(rpc('tlog.v1.AuditService/QueryEvents', {}), (e) => e.code === 'PermissionDenied');
  assert.equal(ended, 0);
  assert.equal(asked.length, 1);
});
