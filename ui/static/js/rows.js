// Rendering verified events: table rows (search, drift), timeline items,
// links to subjects' timelines, changes and the verification mark.
import { h, timeEl } from './dom.js';
import { actionLabel, outcomeLabel, actorTypeLabel, targetTypeLabel, GRANT_ACTIONS } from './format.js';

export function timelineHref(tenant, subject) {
  return '#/timeline?' + new URLSearchParams({ tenant: tenant || '', subject }).toString();
}

export function subjectLink(tenant, id, kind) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('a', { href: timelineHref(tenant, id), title: `${kind}; open the timeline of ${id}${tenant ? ' in tenant ' + tenant : ''}` }, id);
}

const shown = (s) => (s === '' ? h('span', { class: 'none' }, '(none)') : s);

// changesEl lists an event's changes, old → new; for grant actions the
// granted value is marked added, the revoked one removed. Only a removal
// strikes its value through: assigning a role adds the new one and, as
// drift counts it, leaves the old one held.
export function changesEl(ev) {
  if (!ev || !ev.changes || ev.changes.length === 0) return h('span', { class: 'muted' }, '—');
  const grant = GRANT_ACTIONS[ev.action];
  return h('ul', { class: 'changes' }, ev.changes.map((c) => {
    const isGrant = grant && c.attribute === grant.kind;
    const cls = 'change' + (isGrant ? (grant.sign > 0 ? ' added' : ' removed') : '');
    const label = isGrant ? (grant.sign > 0 ? 'granted' : 'revoked') : null;
    return h('li', { class: cls },
      label ? h('span', { class: 'tag' }, label) : null,
      h('span', { class: 'attr' }, c.attribute), ': ',
      h('span', { class: c.old_value === '' ? 'old blank' : 'old' }, shown(c.old_value)), h('span', { 'aria-hidden': 'true' }, ' → '),
      h('span', { class: 'visually-hidden' }, isGrant && grant.sign > 0 ? ', new value ' : ' changed to '),
      h('span', { class: 'new' }, shown(c.new_value)));
  }));
}

// verifiedEl is the verification mark: ✓ with what was proven, or ✗ with
// the reason.
export function verifiedEl(ok, reason, erased = false) {
  if (ok) {
    return h('span', { class: 'ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '),
      erased ? 'entry proven (payload erased)' : 'proof verified');
  }
  return h('span', { class: 'bad' }, h('span', { 'aria-hidden': 'true' }, '✗ '), 'not verified: ', reason || 'unknown reason');
}

// statedEl is the neutral mark of what only the log states: not ✓.
export function statedEl(what) {
  return h('span', { class: 'stated' }, h('span', { 'aria-hidden': 'true' }, '○ '), 'as the log states: ', what);
}

export const EVENT_COLUMNS = ['Entry', 'Logged', 'Occurred', 'Actor', 'Action', 'Target', 'Outcome', 'Changes', 'Verification'];

export function headRow(cols) {
  return h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c))));
}

// eventCells are the cells of one event (v from checkProven), after the
// entry index cell; ok/reason are the overall verdict for the row.
export function eventCells(v, ok, reason) {
  const ev = v.event;
  const cells = [h('td', null, timeEl(v.time))];
  if (v.erased) {
    cells.push(h('td', { colspan: 6, class: 'erased' }, `Erased by entry ${v.erasedBy}: the payload and salt are gone; the entry stays in the log.`));
  } else if (!ev) {
    cells.push(h('td', { colspan: 6, class: 'muted' }, 'Not shown: the event could not be verified.'));
  } else {
    cells.push(
      h('td', null, timeEl(ev.occurred_at)),
      h('td', null, subjectLink(ev.tenant, ev.actor && ev.actor.id, actorTypeLabel(ev.actor && ev.actor.type)),
        ev.actor && ev.actor.display_name ? h('span', { class: 'sub' }, ev.actor.display_name) : null),
      h('td', null, actionLabel(ev.action, ev.custom_action), ev.tenant ? h('span', { class: 'sub' }, 'tenant ' + ev.tenant) : null),
      h('td', null, subjectLink(ev.tenant, ev.target && ev.target.id, targetTypeLabel(ev.target && ev.target.type)),
        ev.target ? h('span', { class: 'sub' }, targetTypeLabel(ev.target.type)) : null),
      h('td', null, h('span', { class: 'outcome ' + String(ev.outcome).toLowerCase() }, outcomeLabel(ev.outcome)),
        ev.reason ? h('span', { class: 'sub' }, ev.reason) : null),
      h('td', null, changesEl(ev)));
  }
  cells.push(h('td', { class: 'verification' }, verifiedEl(ok, reason, v.erased)));
  return cells;
}

// eventRow is a <tr class="event"> of a results table.
export function eventRow(v, ok = v.ok, reason = v.reason) {
  return h('tr', { class: 'event', dataset: { index: String(v.index ?? ''), verified: ok ? 'yes' : 'no' } },
    h('th', { scope: 'row' }, v.index ?? '?'), eventCells(v, ok, reason));
}

// timelineItem is an <li class="event"> of a timeline.
export function timelineItem(v, ok, reason) {
  const ev = v.event;
  let body;
  if (v.erased) {
    body = h('p', { class: 'erased' }, `Erased by entry ${v.erasedBy}: the payload is gone; the entry still links the chain.`);
  } else if (!ev) {
    body = h('p', { class: 'muted' }, 'Not shown: the event could not be verified.');
  } else {
    const grant = GRANT_ACTIONS[ev.action];
    body = [
      h('p', { class: 'what' + (grant ? ' grant ' + (grant.sign > 0 ? 'added' : 'removed') : '') },
        h('strong', null, actionLabel(ev.action, ev.custom_action)), ' — ',
        subjectLink(ev.tenant, ev.actor && ev.actor.id, 'actor'), ' → ',
        targetTypeLabel(ev.target && ev.target.type).toLowerCase(), ' ',
        subjectLink(ev.tenant, ev.target && ev.target.id, 'target'), ' — ',
        h('span', { class: 'outcome ' + String(ev.outcome).toLowerCase() }, outcomeLabel(ev.outcome)),
        ev.reason ? h('span', { class: 'reason' }, ` (${ev.reason})`) : null),
      ev.changes && ev.changes.length ? changesEl(ev) : null,
    ];
  }
  return h('li', { class: 'event' + (ev && GRANT_ACTIONS[ev.action] ? ' grant-event' : ''), dataset: { index: String(v.index ?? ''), verified: ok ? 'yes' : 'no' } },
    h('div', { class: 'when' },
      h('span', { class: 'idx' }, `entry ${v.index ?? '?'}`), ' logged ', timeEl(v.time),
      ev ? [' · occurred ', timeEl(ev.occurred_at)] : null),
    body,
    h('div', { class: 'verification' }, verifiedEl(ok, reason, v.erased)));
}
