// Alarms: the evidence of a possible fork, rollback or inconsistency of a
// log, kept in local storage ('tlogd.alarm.' + origin) until the user
// clears it, so that a later honest-looking answer does not make the page
// forget it. Pure: the storage (localStorage or a stand-in) is passed in.

export const alarmKey = (origin) => 'tlogd.alarm.' + origin;

const KINDS = new Set(['fork', 'rollback', 'inconsistent']);
const WORDS = { fork: 'POSSIBLE FORK', rollback: 'POSSIBLE ROLLBACK OR FORK', inconsistent: 'POSSIBLE FORK: CHECKPOINTS NOT CONSISTENT' };
export const alarmTitle = (a) => WORDS[a.kind] || 'ALARM';

const point = (p, extra) => (p && Number.isSafeInteger(p.size) && typeof p.root === 'string'
  ? { size: p.size, root: p.root, ...extra(p), checkpoint: typeof p.checkpoint === 'string' && p.checkpoint ? p.checkpoint : null }
  : null);

// alarmOf is the evidence of a TrustError {kind, message, old: {size, root,
// seen_at, checkpoint}, now: {size, root, checkpoint}}, or null when it is
// not evidence against the log (a checkpoint that does not verify with
// the pinned key is more likely the wrong key pinned).
export function alarmOf(err, detectedAt = new Date()) {
  if (!err || !KINDS.has(err.kind)) return null;
  const trusted = point(err.old, (p) => ({ seen_at: p.seen_at || null }));
  const shown = point(err.now, () => ({}));
  if (!trusted || !shown) return null;
  return { kind: err.kind, message: String(err.message), detected_at: detectedAt.toISOString(), trusted, shown };
}

// readAlarm is the alarm stored for origin, or null. A stored alarm that
// cannot be read is still an alarm.
export function readAlarm(storage, origin) {
  let raw = null;
  try { raw = storage.getItem(alarmKey(origin)); } catch { return null; }
  if (raw == null) return null;
  try {
    const a = JSON.parse(raw);
    if (a && typeof a.kind === 'string' && typeof a.message === 'string') {
      return { kind: a.kind, message: a.message, detected_at: typeof a.detected_at === 'string' ? a.detected_at : null,
        trusted: point(a.trusted, (p) => ({ seen_at: typeof p.seen_at === 'string' ? p.seen_at : null })), shown: point(a.shown, () => ({})) };
    }
  } catch { /* below */ }
  return { kind: 'unknown', message: 'an alarm is stored in this browser, but it cannot be read', detected_at: null, trusted: null, shown: null };
}

// saveAlarm stores alarm for origin, unless one is stored already: the
// first evidence is kept until the user clears it. Returns the stored one.
export function saveAlarm(storage, origin, alarm) {
  const had = readAlarm(storage, origin);
  if (had || !alarm) return had;
  storage.setItem(alarmKey(origin), JSON.stringify(alarm));
  return alarm;
}

export function clearAlarm(storage, origin) {
  storage.removeItem(alarmKey(origin));
}

const missing = '(not kept: this browser trusted it before the dashboard kept checkpoint texts)';

// alarmText is the evidence as a text file, to hand to the operator.
export function alarmText(origin, a) {
  const lines = [
    `tlogd dashboard alarm: ${alarmTitle(a)}`,
    `Log: ${origin}`,
    `Detected: ${a.detected_at || 'unknown'}`,
    `What was seen: ${a.message}`,
    '',
  ];
  if (a.trusted) {
    lines.push(`Checkpoint this browser trusted (size ${a.trusted.size}, root ${a.trusted.root}${a.trusted.seen_at ? ', seen ' + a.trusted.seen_at : ''}):`,
      a.trusted.checkpoint ? a.trusted.checkpoint.replace(/\n$/, '') : missing, '');
  }
  if (a.shown) {
    lines.push(`Checkpoint the log showed (size ${a.shown.size}, root ${a.shown.root}):`,
      a.shown.checkpoint ? a.shown.checkpoint.replace(/\n$/, '') : '(not kept)', '');
  }
  lines.push('Both checkpoints are signed notes: check their signatures with the log\'s verifier key; signed by the log, they are its own statements.');
  return lines.join('\n') + '\n';
}

export const alarmFileName = (origin, a) =>
  `tlogd-alarm-${origin.replace(/[^A-Za-z0-9.-]+/g, '_')}-${(a.detected_at || 'unknown').replace(/[:.]/g, '-')}.txt`;
