// Trust in checkpoints: every checkpoint the page uses is opened with the
// pinned verifier key and proven consistent with the last checkpoint this
// browser trusted for the log (localStorage 'tlogd.last.' + origin =
// {size, root, seen_at, vkey, checkpoint (its text; absent in states saved
// by older versions)}). A smaller latest tree, another root at the same
// size, or a consistency proof that fails is a failure: the stored state
// is kept, the evidence is stored as an alarm (alarm.js) that stays until
// the user clears it, and the page says so loudly.
import { rpc, LOG } from './api.js';
import { openCheckpoint, verifyConsistency, b64decode, b64encode, equalBytes, parseVerifierKey } from './verify.js';
import { u64 } from './format.js';
import * as alarms from './alarm.js';

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

const stateKey = (origin) => 'tlogd.last.' + origin;

// lastSeen is the checkpoint this browser last trusted for the log of this
// origin and the pinned key (a state recorded under another key is another
// log's, and is not used).
export function lastSeen(origin) {
  try {
    const v = JSON.parse(localStorage.getItem(stateKey(origin)));
    if (v && Number.isSafeInteger(v.size) && v.size >= 0 && typeof v.root === 'string' && (!v.vkey || v.vkey === pinnedKey())) return v;
  } catch { /* none */ }
  return null;
}

function remember(cp) {
  localStorage.setItem(stateKey(cp.origin), JSON.stringify({ size: cp.size, root: b64encode(cp.root), seen_at: new Date().toISOString(), vkey: pinnedKey(), checkpoint: cp.text }));
}

// storedAlarm is the alarm stored for origin, or null; clearAlarm removes
// it (the user reported it) and lets the next check set the status.
export function storedAlarm(origin) {
  try { return origin ? alarms.readAlarm(localStorage, origin) : null; } catch { return null; }
}
export function clearAlarm(origin) {
  alarms.clearAlarm(localStorage, origin);
  setStatus({ state: 'verifying', cp: null, error: null, alarm: null });
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

// The page-wide trust status, for the header badge: {state, cp, error,
// alarm (the stored alarm, or null)}.
let status = { state: 'verifying', cp: null, error: null, alarm: null };
const listeners = new Set();
export function onTrust(fn) { listeners.add(fn); fn(status); return () => listeners.delete(fn); }
export const trustStatus = () => status;
function setStatus(s) {
  status = s;
  for (const fn of listeners) fn(status);
}

// Checks run one at a time, so the stored state moves in order.
let queue = Promise.resolve();
function serial(fn) {
  const p = queue.then(fn);
  queue = p.catch(() => {});
  return p;
}

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

// reconcile proves cp consistent with the stored checkpoint. latest: cp is
// the log's latest, so a smaller one is a rollback; otherwise (a response
// at a fixed size) a smaller one must be a prefix of the stored tree.
async function reconcile(cp, latest) {
  const last = lastSeen(cp.origin);
  if (!last) {
    remember(cp);
    return false;
  }
  const lastRoot = b64decode(last.root);
  const old = { size: last.size, root: last.root, seen_at: last.seen_at, checkpoint: typeof last.checkpoint === 'string' ? last.checkpoint : null };
  const now = { size: cp.size, root: b64encode(cp.root), checkpoint: cp.text };
  const seen = `this browser trusted ${desc(old.size, old.root)} on ${old.seen_at || 'an earlier visit'}`;
  if (cp.size === last.size) {
    if (!equalBytes(cp.root, lastRoot)) {
      throw new TrustError('fork', `POSSIBLE FORK: ${seen}; the log now signs the same size with root ${now.root}`, old, now);
    }
    remember(cp);
    return true;
  }
  if (cp.size < last.size && latest) {
    throw new TrustError('rollback', `POSSIBLE ROLLBACK OR FORK: ${seen}; the log's latest checkpoint is smaller: ${desc(now.size, now.root)}`, old, now);
  }
  const [small, big] = cp.size < last.size ? [now, old] : [old, now];
  let resp;
  try {
    resp = await rpc(LOG + 'GetConsistencyProof', { first_tree_size: small.size, second_tree_size: big.size });
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
  if (cp.size > last.size) remember(cp);
  return true;
}

async function check(text, latest) {
  let cp = null;
  try {
    cp = await open(text);
    const known = await reconcile(cp, latest);
    // A log that showed a fork once is not trusted again by later answers:
    // its alarm stays until the user clears it, and any other failure stays
    // on the header badge until the page is reloaded.
    const a = storedAlarm(cp.origin);
    if (a) setStatus({ state: 'failed', cp, error: alarmError(a), alarm: a });
    else if (status.state !== 'failed') setStatus({ state: 'verified', cp, error: null, alarm: null });
    return Object.assign(cp, { known });
  } catch (e) {
    if (e.name === 'TrustError') {
      if (cp) {
        try { alarms.saveAlarm(localStorage, cp.origin, alarms.alarmOf(e)); } catch { /* storage off or full: this page only */ }
      }
      setStatus({ state: 'failed', cp: null, error: e, alarm: storedAlarm(cp ? cp.origin : pinnedOrigin()) });
    }
    throw e;
  }
}

// checkLatest fetches the latest checkpoint and verifies it. It returns
// {cp, text, cosigned} (cosigned: the cosigned checkpoint's text, or '');
// cp.known is false when this browser had seen no checkpoint of the log.
export function checkLatest() {
  return serial(async () => {
    const resp = await rpc(LOG + 'GetCheckpoint', { tree_size: 0 });
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
