// The dashboard's JSON API (/ui/api): fetch with the session cookie, the
// CSRF token on every POST, errors as ApiError {status, code, message}.
// A 401 on a signed-in call ends the session (the app goes back to
// sign-in) only when GET /session says it is gone too: a session that is
// still signed in was refused, not signed out.

const BASE = '/ui/api';
export const LOG = 'tlog.v1.LogService/';
export const AUDIT = 'tlog.v1.AuditService/';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const codes = { 400: 'InvalidArgument', 401: 'Unauthenticated', 403: 'PermissionDenied', 404: 'NotFound',
  409: 'FailedPrecondition', 429: 'ResourceExhausted', 503: 'Unavailable', 504: 'DeadlineExceeded' };

let csrf = '';
try { csrf = sessionStorage.getItem('tlogd.csrf') || ''; } catch { /* storage off: memory only */ }

export function setCsrf(token) {
  csrf = token || '';
  try {
    if (csrf) sessionStorage.setItem('tlogd.csrf', csrf);
    else sessionStorage.removeItem('tlogd.csrf');
  } catch { /* memory only */ }
}

let sessionEnded = () => {};
// onSessionEnded sets what to do when a call finds the session gone.
export function onSessionEnded(fn) { sessionEnded = fn; }

async function call(method, path, body, { expect401 = false, signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
  if (method === 'POST') {
    init.headers['Content-Type'] = 'application/json';
    if (csrf) init.headers['X-CSRF-Token'] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    if (e.name === 'TimeoutError') throw new ApiError(0, 'DeadlineExceeded', 'tlogd did not answer in time: try again, and tell the operator if it goes on');
    throw new ApiError(0, 'Unavailable', 'could not reach tlogd: check that it is running and that you are online');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* below */ }
  if (!res.ok) {
    const code = (data && data.code) || codes[res.status] || 'Internal';
    const err = new ApiError(res.status, code, (data && data.message) || `HTTP ${res.status} ${res.statusText}`);
    if (res.status === 401 && !expect401) {
      if (await signedOut()) {
        setCsrf('');
        sessionEnded('Your session ended; sign in again.');
      } else {
        err.code = 'PermissionDenied';
      }
    }
    throw err;
  }
  if (data === null && text) throw new ApiError(res.status, 'Internal', 'the server answered with something that is not JSON');
  return data;
}

// signedOut asks whether the session is gone: true only when GET /session
// answers 401 (not when it cannot be reached). Calls refused together ask
// once.
let probe = null;
function signedOut() {
  probe ??= call('GET', '/session', undefined, { expect401: true, signal: AbortSignal.timeout(30000) })
    .then(() => false, (e) => e.status === 401)
    .finally(() => { probe = null; });
  return probe;
}

export const getInfo = () => call('GET', '/info');

// getSession returns the session, or null when not signed in.
export async function getSession() {
  try {
    return await call('GET', '/session', undefined, { expect401: true });
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export const signIn = (token) => call('POST', '/session', { token }, { expect401: true });
export const signOut = () => call('POST', '/logout', {}, { expect401: true });

// rpc calls an allowed gRPC method with a protojson request.
export const rpc = (method, req = {}, opts = {}) => call('POST', '/rpc/' + method, req, opts);

let logInfo = null;
// getLogInfo is GetLogInfo, asked once a page load.
export function getLogInfo() {
  logInfo ??= rpc(LOG + 'GetLogInfo', {}).catch((e) => { logInfo = null; throw e; });
  return logInfo;
}
