// Pure checks of decoded events against what was asked: query filters
// (as client.matches), drift items (as client.verifyDriftItem with
// internal/drift), and drift baselines (as tlogctl's parseBaseline).

// queryMismatch says why an event does not match a QueryEvents request
// (protojson form as sent), or '' when it matches. The log-time range is
// checked on the entry (logTimeMismatch).
export function queryMismatch(q, ev) {
  const actor = (ev.actor && ev.actor.id) || '';
  const target = (ev.target && ev.target.id) || '';
  const scoped = !!(q.subject_id || q.actor_id || q.target_id);
  if ((q.tenant || scoped) && ev.tenant !== (q.tenant || '')) return `its tenant is "${ev.tenant}"`;
  if (q.subject_id && actor !== q.subject_id && target !== q.subject_id) return `it does not name "${q.subject_id}"`;
  if (q.actor_id && actor !== q.actor_id) return `its actor is "${actor}"`;
  if (q.target_id && target !== q.target_id) return `its target is "${target}"`;
  if (q.actions && q.actions.length && !q.actions.includes(ev.action)) return `its action is ${ev.action}`;
  if (q.outcome && q.outcome !== 'OUTCOME_UNSPECIFIED' && ev.outcome !== q.outcome) return `its outcome is ${ev.outcome}`;
  const o = ev.occurred_at;
  if (q.occurred_from && (o == null || o < Date.parse(q.occurred_from))) return 'it occurred before the range asked for';
  if (q.occurred_before && (o == null || o >= Date.parse(q.occurred_before))) return 'it occurred after the range asked for';
  return '';
}

// logTimeMismatch checks an entry's log time (Unix ms) against the request's
// logged_from/logged_before.
export function logTimeMismatch(q, ms) {
  if (q.logged_from && ms < Math.floor(Date.parse(q.logged_from))) return 'it was logged before the time range asked for';
  if (q.logged_before && ms >= Date.parse(q.logged_before)) return 'it was logged after the time range asked for';
  return '';
}

const GRANTS = {
  ACTION_ROLE_ASSIGNED: ['role', 1], ACTION_ROLE_REVOKED: ['role', -1],
  ACTION_PERMISSION_GRANTED: ['permission', 1], ACTION_PERMISSION_REVOKED: ['permission', -1],
  ACTION_GROUP_MEMBER_ADDED: ['group', 1], ACTION_GROUP_MEMBER_REMOVED: ['group', -1],
};

// grantOf is drift.Grant: the grant an event gives (+1) or takes (-1).
export function grantOf(ev) {
  const g = GRANTS[ev.action];
  if (!g) return null;
  const [kind, sign] = g;
  let name = '';
  for (const c of ev.changes || []) {
    if (c.attribute !== kind) continue;
    name = c.new_value;
    if (sign < 0 || name === '') name = c.old_value || c.new_value;
  }
  return name ? { subject: (ev.target && ev.target.id) || '', kind, name, sign } : null;
}

export const KINDS = { GRANT_KIND_ROLE: 'role', GRANT_KIND_PERMISSION: 'permission', GRANT_KIND_GROUP: 'group' };
export const STATUSES = {
  DRIFT_STATUS_UNAPPROVED: { key: 'unapproved', words: 'Held, not approved', long: 'the subject holds a grant the baseline does not approve' },
  DRIFT_STATUS_REVOKED: { key: 'revoked', words: 'Approved, taken away', long: 'the baseline approves a grant the subject held and no longer holds' },
  DRIFT_STATUS_NEVER_GRANTED: { key: 'never-granted', words: 'Approved, never granted', long: 'the baseline approves a grant no event gave' },
};

export function approved(baseline, subject, kind, name) {
  const g = baseline.subjects[subject];
  if (!g) return false;
  const list = { role: g.roles, permission: g.permissions, group: g.groups }[kind] || [];
  return list.includes(name);
}

// driftItemProblem checks a DriftItem's claim against the baseline and
// (when it has one) its verified, decoded event; '' when it holds.
export function driftItemProblem(baseline, item, ev) {
  const kind = KINDS[item.kind];
  const st = STATUSES[item.status];
  if (!kind || !st) return `unknown kind ${item.kind} or status ${item.status}`;
  const ok = approved(baseline, item.subject_id, kind, item.name);
  if (ok === (st.key === 'unapproved')) return `the item says ${st.key}, but the baseline ${ok ? 'approves' : 'does not approve'} it`;
  const hasEvent = !!item.event;
  if ((st.key === 'never-granted') === hasEvent) return st.key === 'never-granted' ? 'a never-granted item cites an event' : 'the item cites no event';
  if (!ev) return '';
  if (ev.tenant !== baseline.tenant || ev.outcome !== 'OUTCOME_SUCCESS' || !(GRANTS[ev.action] || ev.action === 'ACTION_ACCOUNT_DELETED')) {
    return `the event (${ev.action}, ${ev.outcome}, tenant "${ev.tenant}") is not a successful grant event of tenant "${baseline.tenant}"`;
  }
  if (st.key === 'revoked' && ev.action === 'ACTION_ACCOUNT_DELETED') {
    return ev.target && ev.target.id === item.subject_id ? '' : `the account deleted is "${ev.target && ev.target.id}"`;
  }
  const g = grantOf(ev);
  const right = g && g.subject === item.subject_id && g.kind === kind && g.name === item.name &&
    ((st.key === 'unapproved' && g.sign > 0) || (st.key === 'revoked' && g.sign < 0));
  return right ? '' : `the event (${ev.action} of "${ev.target && ev.target.id}") does not make it ${st.key}`;
}

// driftOrder compares items as the report sorts them (subject, kind name,
// name; by UTF-16 code units, the same as Go's byte order for these).
export function driftKey(item) {
  return [item.subject_id, KINDS[item.kind] || '', item.name];
}
export function compareKeys(a, b) {
  for (let i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

// parseBaseline reads the JSON form of a tlogctl drift baseline strictly:
// {"tenant": "...", "subjects": {"alice": {"roles": [], "permissions": [], "groups": []}}}.
export function parseBaseline(text) {
  let b;
  try {
    b = JSON.parse(text);
  } catch (e) {
    const yamlish = /^\s*(tenant|subjects)\s*:/m.test(text);
    throw new Error(yamlish
      ? 'this looks like YAML: the browser reads JSON baselines only; convert YAML baselines to JSON (same fields)'
      : `not JSON: ${e.message}`);
  }
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new Error('the baseline must be a JSON object with "tenant" and "subjects"');
  for (const k of Object.keys(b)) if (k !== 'tenant' && k !== 'subjects') throw new Error(`unknown field "${k}": a baseline has "tenant" and "subjects"`);
  if (b.tenant != null && typeof b.tenant !== 'string') throw new Error('"tenant" must be a string');
  const subjects = b.subjects ?? {};
  if (typeof subjects !== 'object' || Array.isArray(subjects)) throw new Error('"subjects" must be an object: subject id → grants');
  const out = { tenant: b.tenant || '', subjects: {} };
  for (const [subject, g] of Object.entries(subjects)) {
    if (subject === '') throw new Error('subjects: an empty subject id');
    if (g == null) { out.subjects[subject] = { roles: [], permissions: [], groups: [] }; continue; }
    if (typeof g !== 'object' || Array.isArray(g)) throw new Error(`subjects["${subject}"] must be an object with roles, permissions, groups`);
    const grants = { roles: [], permissions: [], groups: [] };
    for (const [field, names] of Object.entries(g)) {
      if (!(field in grants)) throw new Error(`subjects["${subject}"]: unknown field "${field}" (a subject's grants are roles, permissions, groups)`);
      if (names == null) continue;
      if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new Error(`subjects["${subject}"].${field} must be a list of names`);
      names.forEach((n, i) => { if (n === '') throw new Error(`subjects["${subject}"].${field}[${i}]: empty`); });
      grants[field] = names;
    }
    out.subjects[subject] = grants;
  }
  return out;
}
