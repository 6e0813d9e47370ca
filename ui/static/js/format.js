// Pure formatting helpers: labels, times, numbers, error texts, key
// fingerprints. No DOM, so node tests can check them (ui/test/format.test.mjs).
import { parseVerifierKey } from './verify.js';

// u64 turns a protojson uint64 (a decimal string, or a number) into a
// Number, refusing what a Number cannot hold exactly.
export function u64(v, what = 'number') {
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${what}: ${JSON.stringify(v)} is not a whole number this page can handle`);
  }
  return n;
}

// enumLabel turns ACTION_ROLE_ASSIGNED into "Role assigned".
export function enumLabel(name, prefix) {
  if (!name) return '';
  let s = String(name);
  if (prefix && s.startsWith(prefix)) s = s.slice(prefix.length);
  s = s.toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const actionWords = {
  ACTION_MFA_ENROLLED: 'MFA enrolled',
  ACTION_MFA_REMOVED: 'MFA removed',
  ACTION_LOG_PAYLOADS_READ: 'Log payloads read',
};

export function actionLabel(action, custom = '') {
  if (action === 'ACTION_CUSTOM' && custom) return `Custom: ${custom}`;
  return actionWords[action] || enumLabel(action, 'ACTION_');
}
export const outcomeLabel = (o) => enumLabel(o, 'OUTCOME_');
export const actorTypeLabel = (t) => enumLabel(t, 'ACTOR_TYPE_');
export const targetTypeLabel = (t) => enumLabel(t, 'TARGET_TYPE_');

// Grant changes, and whether the action adds or removes.
export const GRANT_ACTIONS = {
  ACTION_ROLE_ASSIGNED: { kind: 'role', sign: 1 },
  ACTION_ROLE_REVOKED: { kind: 'role', sign: -1 },
  ACTION_PERMISSION_GRANTED: { kind: 'permission', sign: 1 },
  ACTION_PERMISSION_REVOKED: { kind: 'permission', sign: -1 },
  ACTION_GROUP_MEMBER_ADDED: { kind: 'group', sign: 1 },
  ACTION_GROUP_MEMBER_REMOVED: { kind: 'group', sign: -1 },
};

// isoUTC is the UTC time with milliseconds, as tlogctl prints it.
export function isoUTC(ms) {
  return new Date(ms).toISOString();
}

// localTime is the time in the viewer's zone (or timeZone), to the second,
// with the zone's short name: "2026-11-26 10:01:44 CET".
export function localTime(ms, timeZone) {
  const opts = {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
  };
  if (timeZone) opts.timeZone = timeZone;
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-CA', opts).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

// timeLabels is a time's text and title: the viewer's zone (or timeZone)
// as the text and UTC as the title, or the other way round when utc.
export function timeLabels(ms, utc = false, timeZone) {
  const local = localTime(ms, timeZone);
  if (utc) return { text: localTime(ms, 'UTC'), title: local };
  return { text: local, title: isoUTC(ms).replace('T', ' ').replace('Z', ' UTC') };
}

// localInputToISO turns a datetime-local value (the viewer's zone) into
// RFC 3339 UTC; '' stays ''.
export function localInputToISO(value) {
  if (!value) return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) throw new Error(`${value} is not a date and time`);
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), +((m[7] || '0').padEnd(3, '0')));
  return d.toISOString();
}

// age says how long ago ms was, in words: "12 s ago", "3 min ago".
export function age(ms, now = Date.now()) {
  let s = Math.round((now - ms) / 1000);
  if (s < 0) return `${-s} s in the future (check the clocks)`;
  if (s < 120) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

// appendRate says how fast entries were logged, from their log times in
// index order (Unix ms).
export function appendRate(times) {
  if (times.length < 2) return 'not enough entries yet';
  const span = times[times.length - 1] - times[0];
  const n = times.length - 1;
  if (span <= 0) return `${times.length} entries logged within the same millisecond`;
  const rate = n / (span / 1000);
  const shown = rate >= 100 ? Math.round(rate).toLocaleString('en') : rate >= 1 ? rate.toFixed(1) : rate.toPrecision(2);
  return `${shown} records/s over the last ${times.length.toLocaleString('en')} entries`;
}

export function plural(n, one, many = one + 's') {
  return `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
}

// describeError turns an error into what to tell the user, with the next
// step. Errors of the API carry code and message; VerifyError is a proof
// that does not check.
export function describeError(err) {
  if (!err) return 'Something went wrong: reload the page.';
  const msg = clean(err.message || String(err));
  if (err.name === 'VerifyError' || err.name === 'TrustError') {
    return `Verification failed: ${msg}. Do not rely on this answer; keep the details and tell the log's operator.`;
  }
  switch (err.code) {
    case 'PermissionDenied':
      return `Refused: ${msg}. Ask the operator for a token with that capability, then sign in with it.`;
    case 'Unauthenticated':
      return 'Your session expired: sign in again.';
    case 'InvalidArgument':
      return `The server refused the request: ${msg}. Correct it and try again.`;
    case 'NotFound':
    case 'OutOfRange':
      return `Not found: ${msg}.`;
    case 'ResourceExhausted':
      return `Too many requests: ${msg}. Wait a moment and try again.`;
    case 'Unavailable':
      return `tlogd is unavailable: ${msg}. Try again shortly.`;
    case 'FailedPrecondition':
      return `The server cannot do this now: ${msg}.`;
    case 'DeadlineExceeded':
      return `The request took too long: ${msg}. Narrow it down and try again.`;
  }
  if (err.code) return `The server failed: ${msg} (${err.code}). Try again; if it persists, tell the operator.`;
  return `${msg}. Reload the page and try again.`;
}

// clean drops a message's final full stop, so that sentences can go on.
export function clean(msg) {
  return String(msg).replace(/[.\s]+$/, '');
}

// keyText is a verifier key as written in a field: a key has no white
// space, so line breaks pasted into it are dropped.
export const keyText = (s) => s.replace(/\s+/g, '');

// keyFingerprint is what to compare a verifier key by at a glance: its
// name, its key hash (8 hex digits) and the first and last 6 characters of
// its key data: "example.com/log · 1a2b3c4d · AQ4n2k…x9Zk0=". It throws
// on a key that does not parse.
export function keyFingerprint(vkey) {
  parseVerifierKey(vkey);
  const [name, hash, ...rest] = vkey.split('+');
  const data = rest.join('+'); // base64 has + too
  return `${name} · ${hash} · ${data.length > 12 ? `${data.slice(0, 6)}…${data.slice(-6)}` : data}`;
}

// shortHash shows the start of a base64 hash.
export function shortHash(b64) {
  return b64.length > 16 ? b64.slice(0, 12) + '…' : b64;
}
