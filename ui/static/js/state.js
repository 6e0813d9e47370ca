// The trust state this browser keeps for a log, in local storage (passed
// in: localStorage or a stand-in; pure otherwise):
//
//   'tlogd.last.' + origin: the checkpoint it last trusted, {size, root
//   (base64), seen_at, vkey, checkpoint (its text; absent in states saved
//   by older versions)}. It only grows: another tab may have moved it on
//   meanwhile, and a smaller state never replaces a larger one.
//
//   'tlogd.unproven.' + origin: signed checkpoints of the log that this
//   browser could not yet prove consistent with the trusted one, because
//   the log did not answer or failed (not a refusal, which is an alarm):
//   {vkey, items: [{size, root, checkpoint, first_seen, last_failed,
//   failures, error}], dropped}. They are proven at the next check that
//   succeeds, so that a log cannot avoid the alarm by failing to answer.
//
// The checkpoints kept are the log's own notes (verify.js openCheckpoint's
// own: the body and the log's signature line), not what the server sent:
// other signature lines are unchecked and unbounded.
//
// A state recorded under another verifier key is another log's, and is
// not used.

export const trustedKey = (origin) => 'tlogd.last.' + origin;
export const unprovenKey = (origin) => 'tlogd.unproven.' + origin;

// MAX_UNPROVEN bounds the unproven checkpoints kept (an outage of 40
// minutes of a growing log, checked every 10 seconds); later ones are
// counted (dropped) but not kept. They can never be proven: the count
// stays until the user forgets it (forgetDropped).
export const MAX_UNPROVEN = 256;

function read(storage, key) {
  try { return JSON.parse(storage.getItem(key)); } catch { return null; }
}

// readTrusted is the trusted state of origin under vkey, or null.
export function readTrusted(storage, origin, vkey) {
  const v = read(storage, trustedKey(origin));
  if (v && Number.isSafeInteger(v.size) && v.size >= 0 && typeof v.root === 'string' && (!v.vkey || v.vkey === vkey)) return v;
  return null;
}

// saveTrusted stores next ({size, root, checkpoint}) as the trusted state
// of origin, unless the stored one is larger or at the same size: then it
// is kept. It returns the state stored after the call (compare its root
// with next's: another root at the same size is a fork).
export function saveTrusted(storage, origin, vkey, next, now = new Date()) {
  const had = readTrusted(storage, origin, vkey);
  if (had && had.size >= next.size) return had;
  const state = { size: next.size, root: next.root, seen_at: now.toISOString(), vkey, checkpoint: next.checkpoint };
  storage.setItem(trustedKey(origin), JSON.stringify(state));
  return state;
}

const item = (v) => v && Number.isSafeInteger(v.size) && v.size >= 0 && typeof v.root === 'string' && typeof v.checkpoint === 'string';

// readUnproven is {items, dropped} for origin under vkey (no items: none).
export function readUnproven(storage, origin, vkey) {
  const v = read(storage, unprovenKey(origin));
  if (!v || v.vkey !== vkey || !Array.isArray(v.items)) return { items: [], dropped: 0 };
  return { items: v.items.filter(item), dropped: Number.isSafeInteger(v.dropped) && v.dropped > 0 ? v.dropped : 0 };
}

function write(storage, origin, vkey, list) {
  if (!list.items.length && !list.dropped) storage.removeItem(unprovenKey(origin));
  else storage.setItem(unprovenKey(origin), JSON.stringify({ vkey, items: list.items, dropped: list.dropped }));
  return list;
}

const same = (a, b) => a.size === b.size && a.root === b.root;

// keepUnproven records that cp ({size, root, checkpoint}) could not be
// proven, because of error. It returns the list.
export function keepUnproven(storage, origin, vkey, cp, error, now = new Date()) {
  const list = readUnproven(storage, origin, vkey);
  const at = now.toISOString();
  const message = String((error && error.message) || error).slice(0, 300); // the server's words: bounded
  const had = list.items.find((i) => same(i, cp));
  if (had) {
    Object.assign(had, { last_failed: at, failures: (had.failures || 0) + 1, error: message });
  } else if (list.items.length < MAX_UNPROVEN) {
    list.items.push({ size: cp.size, root: cp.root, checkpoint: cp.checkpoint, first_seen: at, last_failed: at, failures: 1, error: message });
  } else {
    list.dropped++;
  }
  return write(storage, origin, vkey, list);
}

// dropUnproven forgets cp once it is proven (or found to be a fork, kept
// as an alarm instead). It returns the list.
export function dropUnproven(storage, origin, vkey, cp) {
  const list = readUnproven(storage, origin, vkey);
  list.items = list.items.filter((i) => !same(i, cp));
  return write(storage, origin, vkey, list);
}

// forgetDropped forgets the count of checkpoints seen and not kept (the
// user's decision: they cannot be proven). It returns the list.
export function forgetDropped(storage, origin, vkey) {
  const list = readUnproven(storage, origin, vkey);
  list.dropped = 0;
  return write(storage, origin, vkey, list);
}

// pending reports whether the list leaves anything unproven.
export const pending = (list) => list.items.length > 0 || list.dropped > 0;

// unprovenText is the list as a text file, for whoever runs the log: the
// trusted checkpoint and every unproven one, with their signed texts.
export function unprovenText(origin, trusted, list) {
  const lines = [
    'tlogd dashboard: checkpoints the log has not proven consistent',
    `Log: ${origin}`,
    '',
    `This browser holds ${list.items.length} checkpoint(s) signed by the log that it could not prove consistent with the one it trusts: the log did not answer, or failed, when asked for the proof.${list.dropped ? ` ${list.dropped} more were seen and not kept.` : ''}`,
    'An honest log can prove every checkpoint it signed. If it keeps failing to, it may be showing this browser another history: give this file to whoever relies on the log, and check the checkpoints against another copy (tlogctl, a witness).',
    '',
  ];
  if (trusted) {
    lines.push(`Checkpoint this browser trusts (size ${trusted.size}, root ${trusted.root}${trusted.seen_at ? ', since ' + trusted.seen_at : ''}):`,
      trusted.checkpoint ? trusted.checkpoint.replace(/\n$/, '') : '(its text was not kept)', '');
  }
  for (const i of list.items) {
    lines.push(`Unproven checkpoint (size ${i.size}, root ${i.root}), first seen ${i.first_seen}, ${i.failures} failed check(s), last error: ${i.error}`,
      i.checkpoint.replace(/\n$/, ''), '');
  }
  return lines.join('\n');
}
