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
  // Only the alarm's failure is cleared: another failure of this page
  // load stays on the badge.
  if (status.alarm) setStatus({ state: 'verifying', cp: null, error: null, alarm: null });
}
const alarmError = (a) => ({ name: 'TrustError', kind: a.kind, message: a.message });

// loadAlarm puts the stored alarm of the pinned key's log, if any, on the
// header badge (at sign-in, and when another tab changes it).
export function loadAlarm() {
  const a = storedAlarm(pinnedOrigin());
  if (a) setStatus({ state: 'failed', cp: null, error: alarmError(a), alarm: a });
  else if (status.alarm) setStatus({ state: 'verifying', cp: null, error: null, alarm: null });
  return a;
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

const point = (cp) => ({ size: cp.size, root: b64encode(cp.root), checkpoint: cp.text });
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

// settle proves the kept unproven checkpoints of origin, oldest first. A
// fork among them throws (an alarm); a failure to answer leaves them
// kept, and is returned.
async function settle(origin) {
  for (const item of unproven(origin).items) {
    try {
      const cp = await open(item.checkpoint);
      await reconcile(cp, false);
    } catch (e) {
      if (e.name === 'TrustError') {
        try { state.dropUnproven(localStorage, origin, pinnedKey(), item); } catch { /* the alarm has it */ }
        throw e;
      }
      try { state.keepUnproven(localStorage, origin, pinnedKey(), item, e); } catch { /* storage off: this page only */ }
      return e;
    }
    state.dropUnproven(localStorage, origin, pinnedKey(), item);
  }
  return null;
}

function unverified(error) {
  // A failure stays on the badge until the page is reloaded, an alarm
  // until it is cleared.
  if (status.state !== 'failed') setStatus({ state: 'unverified', cp: null, error, alarm: null });
}

async function check(text, latest) {
  let cp = null;
  try {
    cp = await open(text);
    let known;
    try {
      known = await reconcile(cp, latest);
    } catch (e) {
      if (e.name !== 'TrustError') {
        try { state.keepUnproven(localStorage, cp.origin, pinnedKey(), point(cp), e); } catch { /* storage off: this page only */ }
      }
      throw e;
    }
    const pending = await settle(cp.origin);
    // A log that showed a fork once is not trusted again by later answers:
    // its alarm stays until the user clears it, and any other failure stays
    // on the header badge until the page is reloaded.
    const a = storedAlarm(cp.origin);
    if (a) setStatus({ state: 'failed', cp, error: alarmError(a), alarm: a });
    else if (pending) unverified(new Error(`the log has not proven ${plural(unproven(cp.origin).items.length, 'checkpoint')} it signed before: ${pending.message}`));
    else if (status.state !== 'failed') setStatus({ state: 'verified', cp, error: null, alarm: null });
    return Object.assign(cp, { known });
  } catch (e) {
    if (e.name === 'TrustError') {
      if (cp) {
        try { alarms.saveAlarm(localStorage, cp.origin, alarms.alarmOf(e)); } catch { /* storage off or full: this page only */ }
      }
      setStatus({ state: 'failed', cp: null, error: e, alarm: storedAlarm(cp ? cp.origin : pinnedOrigin()) });
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
