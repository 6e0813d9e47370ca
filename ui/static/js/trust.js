// Trust in checkpoints: every checkpoint the page uses is opened with the
// pinned verifier key and proven consistent with the last checkpoint this
// browser trusted for the log (state.js). A smaller latest tree, another
// root at the same size, or a consistency proof that fails or is refused
// is a failure: the stored state is kept, the evidence is stored as an
// alarm (alarm.js) that stays until the user clears it, and the page says
// so loudly. A checkpoint the log fails to prove (an outage, an error) is
// not trusted: it is kept as unproven, the page says it is not verified,
// and it is proven at the next check that gets an answer.
//
// Checks run one at a time in a tab, and under a Web Lock per log across
// the tabs of this browser: the trusted state only moves forward, in the
// order the checkpoints were fetched.
import { rpc, LOG } from './api.js';
import { openCheckpoint, verifyConsistency, b64decode, b64encode, equalBytes, parseVerifierKey } from './verify.js';
import { u64, plural } from './format.js';
import * as alarms from './alarm.js';
import * as state from './state.js';

const VKEY = 'tlogd.vkey';

export function pinnedKey() {
  try { return (localStorage.getItem(VKEY) || '').trim(); } catch { return ''; }
}
export function pinKey(vkey) { localStorage.setItem(VKEY, vkey.trim()); }

// pinnedOrigin is the origin of the pinned key's log ('' when none).
export function pinnedOrigin() {
  try { return parseVerifierKey(pinnedKey()).name; } catch { return ''; }
}

// TrustError is a checkpoint this browser must not trust. kind: signature,
// rollback, fork or inconsistent; old: {size, root (base64), seen_at,
// checkpoint}, now: {size, root, checkpoint} (checkpoint: the note text).
export class TrustError extends Error {
  constructor(kind, message, old = null, now = null) {
    super(message);
    this.name = 'TrustError';
    this.kind = kind;
    this.old = old;
    this.now = now;
  }
}

// lastSeen is the checkpoint this browser last trusted for the log of this
// origin and the pinned key: {size, root (base64), seen_at, checkpoint}.
export function lastSeen(origin) {
  try { return state.readTrusted(localStorage, origin, pinnedKey()); } catch { return null; }
}

// unproven is the list of checkpoints of origin not yet proven
// consistent: {items, dropped} (state.js).
export function unproven(origin) {
  try { return state.readUnproven(localStorage, origin, pinnedKey()); } catch { return { items: [], dropped: 0 }; }
}

// storedAlarm is the alarm stored for origin, or null; clearAlarm removes
// it (the user reported it) and lets the next check set the status.
export function storedAlarm(origin) {
  try { return origin ? alarms.readAlarm(localStorage, origin) : null; } catch { return null; }
}
export function clearAlarm(origin) {
  alarms.clearAlarm(localStorage, origin);
  // Only the alarm's failure is cleared: a broken check of this page load
  // stays on the badge.
  if (status.alarm) setStatus(broken ? failedStatus(broken) : { state: 'verifying', cp: null, error: null, alarm: null });
}
const alarmError = (a) => ({ name: 'TrustError', kind: a.kind, message: a.message });

// loadStored puts what this browser keeps about the pinned key's log on
// the header badge: its alarm (failed), or checkpoints the log has not
// proven (unverified). At sign-in, and when another tab changes them.
export function loadStored() {
  const origin = pinnedOrigin();
  const a = storedAlarm(origin);
  if (a) setStatus({ state: 'failed', cp: null, error: alarmError(a), alarm: a });
  else if (broken) setStatus(failedStatus(broken));
  else if (origin && state.pending(unproven(origin))) setStatus(unverifiedStatus(unprovenError(origin, null)));
  else if (status.alarm) setStatus({ state: 'verifying', cp: null, error: null, alarm: null });
  return a;
}

// forgetDropped forgets the checkpoints of origin seen and not kept.
export function forgetDropped(origin) {
  state.forgetDropped(localStorage, origin, pinnedKey());
}

// The page-wide trust status, for the header badge: {state (verifying,
// verified, unverified: the log failed to prove a checkpoint, or failed),
// cp, error, alarm (the stored alarm, or null)}.
let status = { state: 'verifying', cp: null, error: null, alarm: null };
const listeners = new Set();
export function onTrust(fn) { listeners.add(fn); fn(status); return () => listeners.delete(fn); }
export const trustStatus = () => status;
function setStatus(s) {
  status = s;
  for (const fn of listeners) fn(status);
}

// serial runs checks one at a time in this tab, each under the log's lock
// across tabs (where the browser has Web Locks; without them, the stored
// state still never moves back: state.saveTrusted).
let queue = Promise.resolve();
function serial(fn) {
  const origin = pinnedOrigin();
  const locks = globalThis.navigator && navigator.locks;
  const p = queue.then(() => (locks && origin ? locks.request('tlogd.trust.' + origin, fn) : fn()));
  queue = p.catch(() => {});
  return p;
}

// A check holds the lock while it waits for the log: not for ever.
const PROOF_TIMEOUT = 30000;

async function open(text) {
  const vkey = pinnedKey();
  if (!vkey) throw new TrustError('signature', 'no verifier key is pinned: sign in again and pin the key the operator published');
  try {
    return await openCheckpoint(text, vkey);
  } catch (e) {
    throw new TrustError('signature', `the checkpoint does not verify with the pinned key: ${e.message}`);
  }
}

const refusal = new Set(['NotFound', 'OutOfRange', 'InvalidArgument', 'FailedPrecondition']);
const desc = (size, root) => `size ${size} (root ${root})`;

const point = (cp) => ({ size: cp.size, root: b64encode(cp.root), checkpoint: cp.own });
const pointOf = (last) => ({ size: last.size, root: last.root, seen_at: last.seen_at, checkpoint: typeof last.checkpoint === 'string' ? last.checkpoint : null });

// trust stores now ({size, root, checkpoint}) as the trusted checkpoint,
// unless a larger one is stored; another root stored at its size is a
// fork.
function trust(origin, now) {
  const stored = state.saveTrusted(localStorage, origin, pinnedKey(), now);
  if (stored.size === now.size && stored.root !== now.root) {
    throw new TrustError('fork', `POSSIBLE FORK: this browser trusted ${desc(stored.size, stored.root)} on ${stored.seen_at || 'an earlier visit'}; the log now signs the same size with root ${now.root}`, pointOf(stored), now);
  }
}

// reconcile proves cp consistent with the stored checkpoint. latest: cp is
// the log's latest, fetched under the lock, so a smaller one is a
// rollback; otherwise (a response at a fixed size, or a kept unproven
// checkpoint) a smaller one must be a prefix of the stored tree. It
// returns whether a stored checkpoint was there to prove it against.
async function reconcile(cp, latest) {
  const now = point(cp);
  const last = lastSeen(cp.origin);
  if (!last) {
    trust(cp.origin, now);
    return false;
  }
  const old = pointOf(last);
  const seen = `this browser trusted ${desc(old.size, old.root)} on ${old.seen_at || 'an earlier visit'}`;
  if (cp.size === last.size) {
    if (now.root !== last.root) {
      throw new TrustError('fork', `POSSIBLE FORK: ${seen}; the log now signs the same size with root ${now.root}`, old, now);
    }
    trust(cp.origin, now);
    return true;
  }
  if (cp.size < last.size && latest) {
    throw new TrustError('rollback', `POSSIBLE ROLLBACK OR FORK: ${seen}; the log's latest checkpoint is smaller: ${desc(now.size, now.root)}`, old, now);
  }
  const [small, big] = cp.size < last.size ? [now, old] : [old, now];
  let resp;
  try {
    resp = await rpc(LOG + 'GetConsistencyProof', { first_tree_size: small.size, second_tree_size: big.size }, { signal: AbortSignal.timeout(PROOF_TIMEOUT) });
  } catch (e) {
    // A log that signed both trees can prove one extends the other; a
    // refusal (not an outage) means it no longer stands by one of them.
    if (!refusal.has(e.code)) throw e;
    throw new TrustError(cp.size < last.size ? 'rollback' : 'inconsistent',
      `POSSIBLE ROLLBACK OR FORK: ${seen}, but the log refuses to prove that ${desc(now.size, now.root)} is consistent with it: ${e.message}`, old, now);
  }
  try {
    if (u64(resp.second_tree_size, 'second_tree_size') !== big.size) throw new Error(`the proof is for size ${resp.second_tree_size}`);
    await verifyConsistency(small.size, big.size, (resp.hashes || []).map(b64decode), b64decode(small.root), b64decode(big.root));
  } catch (e) {
    throw new TrustError('inconsistent', `POSSIBLE FORK: ${seen}, and the log's consistency proof to ${desc(now.size, now.root)} fails: ${e.message}`, old, now);
  }
  trust(cp.origin, now);
  return true;
}

// lost is set when this page could not keep an unproven checkpoint (the
// browser's storage is full or off), broken by a check that failed for a
// reason other than the log's history (a checkpoint not signed with the
// pinned key): both hold until the page is reloaded.
let lost = null;
let broken = null;

const failedStatus = (error) => ({ state: 'failed', cp: null, error, alarm: null });
const unverifiedStatus = (error) => ({ state: 'unverified', cp: null, error, alarm: null });

function keep(origin, item, err) {
  try {
    state.keepUnproven(localStorage, origin, pinnedKey(), item, err);
  } catch (e) {
    lost = new Error(`this browser could not keep a checkpoint the log did not prove (${e.message}): keep this page open, and free some storage before you rely on the log`);
  }
}

function drop(origin, item) {
  try { state.dropUnproven(localStorage, origin, pinnedKey(), item); } catch { /* kept: proven again next time */ }
}

// raise stores the evidence of e as the log's alarm, and reports whether
// it is the alarm kept (an earlier one is kept until cleared).
function raise(origin, e) {
  const a = alarms.alarmOf(e);
  try { return !!a && alarms.saveAlarm(localStorage, origin, a) === a; } catch { return false; }
}

const shownBy = (a, p) => !!(a && a.shown && p && a.shown.size === p.size && a.shown.root === p.root);

const itemPoint = (item) => ({ size: item.size, root: item.root, seen_at: item.first_seen || null, checkpoint: item.checkpoint });

// forks finds, without asking the log, two signed roots at one size among
// the trusted checkpoint and the kept unproven ones, and throws the fork.
// With fresh (a checkpoint just opened), it compares fresh with those
// only: each kept one was compared so when it was fresh.
function forks(origin, fresh = null) {
  const last = lastSeen(origin);
  const points = unproven(origin).items.map(itemPoint);
  if (last) points.unshift(pointOf(last));
  if (fresh) points.push(fresh);
  for (let i = fresh ? points.length - 1 : 0; i < points.length; i++) {
    const rival = points.slice(0, i).find((p) => p.size === points[i].size && p.root !== points[i].root);
    if (rival) {
      throw new TrustError('fork', `POSSIBLE FORK: the log signed two trees of size ${rival.size}, with roots ${rival.root} and ${points[i].root}`, rival, points[i]);
    }
  }
}

// SETTLE_TIME bounds the proofs of kept checkpoints at one check, which
// hold the lock: the rest wait for the next check.
const SETTLE_TIME = 60000;

// settle proves the kept unproven checkpoints of origin, oldest first. An
// item is dropped once proven; a fork throws. The first failure to answer
// stops the proofs, and is returned.
async function settle(origin) {
  const until = Date.now() + SETTLE_TIME;
  for (const item of unproven(origin).items) {
    if (Date.now() > until) return new Error('the log took too long to prove the kept checkpoints; the rest are proven at the next check');
    try {
      await reconcile(await open(item.checkpoint), false);
    } catch (e) {
      if (e.name === 'TrustError') throw e;
      keep(origin, item, e);
      return e;
    }
    drop(origin, item);
  }
  return null;
}

// unverified shows error as the reason the page is not verified, unless it
// shows a failure.
function unverified(error) {
  if (status.state !== 'failed') setStatus(unverifiedStatus(error));
}

function unprovenError(origin, cause) {
  if (lost) return lost;
  const list = unproven(origin);
  const n = list.items.length ? plural(list.items.length, 'checkpoint') : 'the checkpoints';
  const what = list.dropped && !list.items.length ? `checkpoints it signed, not kept (${plural(list.dropped, 'check')})` : `${n} it signed before`;
  return new Error(`the log has not proven ${what}${cause ? ': ' + cause.message : ''}`);
}

async function check(text, latest) {
  let cp = null;
  try {
    cp = await open(text);
    // With an alarm kept, the kept checkpoints wait for it to be cleared:
    // only this one is checked.
    const waiting = !!storedAlarm(cp.origin);
    forks(cp.origin, point(cp));
    let known;
    try {
      known = await reconcile(cp, latest);
    } catch (e) {
      if (e.name !== 'TrustError') keep(cp.origin, point(cp), e);
      throw e;
    }
    if (!waiting) forks(cp.origin); // the trusted one may have moved
    const failure = waiting ? null : await settle(cp.origin);
    // A log that showed a fork once is not trusted again by later answers:
    // its alarm stays until the user clears it, and a broken check until
    // the page is reloaded. Only the latest checkpoint, proven, makes a
    // page that was not verified verified.
    const a = storedAlarm(cp.origin);
    if (a) setStatus({ state: 'failed', cp, error: alarmError(a), alarm: a });
    else if (broken) setStatus(failedStatus(broken));
    else if (failure || lost || state.pending(unproven(cp.origin))) setStatus(unverifiedStatus(unprovenError(cp.origin, failure)));
    else if (latest || status.state !== 'unverified') setStatus({ state: 'verified', cp, error: null, alarm: null });
    return Object.assign(cp, { known });
  } catch (e) {
    if (e.name === 'TrustError') {
      const origin = cp ? cp.origin : pinnedOrigin();
      const againstLog = !!alarms.alarmOf(e);
      if (!againstLog) {
        broken = e;
      } else if (raise(origin, e)) {
        drop(origin, e.now); // if it was kept: the alarm has it now
      } else if (!shownBy(storedAlarm(origin), e.now)) {
        // An earlier alarm is kept: this evidence waits, kept, to raise
        // its own once that one is cleared (unless it is that alarm's).
        keep(origin, e.now, e);
      }
      const a = storedAlarm(origin);
      setStatus(a && againstLog ? { state: 'failed', cp: null, error: e, alarm: a } : failedStatus(e));
    } else if (e.name !== 'AbortError') {
      unverified(e);
    }
    throw e;
  }
}

// checkLatest fetches the latest checkpoint and verifies it. It returns
// {cp, text, cosigned} (cosigned: the cosigned checkpoint's text, or '');
// cp.known is false when this browser had seen no checkpoint of the log.
export function checkLatest() {
  return serial(async () => {
    let resp;
    try {
      resp = await rpc(LOG + 'GetCheckpoint', { tree_size: 0 }, { signal: AbortSignal.timeout(PROOF_TIMEOUT) });
      if (!resp || typeof resp.checkpoint !== 'string') throw new Error('the server answered GetCheckpoint without a checkpoint');
    } catch (e) {
      unverified(e);
      throw e;
    }
    const cp = await check(resp.checkpoint, true);
    return { cp, text: resp.checkpoint, cosigned: resp.cosigned_checkpoint || '' };
  });
}

// trustCheckpoint verifies the checkpoint a response came with.
export const trustCheckpoint = (text) => serial(() => check(text, false));

// openOnly opens a checkpoint with the pinned key, without the stored state
// (for a cosigned checkpoint, checked against the latest by the caller).
export const openOnly = (text) => open(text);

// Pager checks the checkpoints of a paged answer: the first page's is
// verified, every later page must be against the same one.
export class Pager {
  constructor() { this.text = null; this.cp = null; }
  async check(text) {
    if (this.text === null) {
      this.cp = await trustCheckpoint(text);
      this.text = text;
    } else if (text !== this.text) {
      // The same tree may come with other signature lines (cosignatures);
      // anything else is another tree.
      const cp = await trustCheckpoint(text);
      if (cp.size !== this.cp.size || !equalBytes(cp.root, this.cp.root)) {
        throw new TrustError('inconsistent', `a later page is against another checkpoint (size ${cp.size}) than the first page's (size ${this.cp.size})`);
      }
    }
    return this.cp;
  }
}
