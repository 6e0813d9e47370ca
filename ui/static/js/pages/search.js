// Search: QueryEvents, 50 events a page, every event verified here against
// the page's checkpoint (inclusion, commitment, decoded payload, filters).
import { h, put, setState, field, errorEl, setBusy, isBusy } from '../dom.js';
import { rpc, AUDIT } from '../api.js';
import { Pager } from '../trust.js';
import { checkProven, Erasures } from '../proven.js';
import { ACTIONS, OUTCOMES } from '../event.js';
import { queryMismatch, logTimeMismatch } from '../checks.js';
import { actionLabel, outcomeLabel, localInputToISO, plural } from '../format.js';
import { eventRow, headRow, EVENT_COLUMNS } from '../rows.js';

const PAGE_SIZE = 50;

// verifyEvents checks one page's events in order; prev is the previous
// event's index (across pages). Returns rows' verdicts.
export async function verifyEvents(cp, events, q, erasures, prev) {
  const out = [];
  for (const pe of events) {
    const v = await checkProven(cp, pe);
    let ok = v.ok;
    let reason = v.reason;
    const fail = (r) => { if (ok) { ok = false; reason = r; } };
    if (ok && prev != null && v.index <= prev) fail(`out of log order: after entry ${prev}`);
    if (ok && v.links == null) fail('not an audit event entry');
    if (ok) { const r = logTimeMismatch(q, v.time); if (r) fail(r); }
    if (ok && v.erased) {
      try { await erasures.check(v.index, v.erasedBy); } catch (e) { fail(e.message); }
    } else if (ok) {
      const r = queryMismatch(q, v.event);
      if (r) fail(`the event does not match the query: ${r}`);
    }
    if (v.index != null) prev = v.index;
    out.push({ v, ok, reason });
  }
  return { rows: out, prev };
}

export default {
  title: 'Search events',
  render(root, params, ctx) {
    const text = (id, value) => h('input', { id, name: id, type: 'text', value: value || '', autocomplete: 'off', spellcheck: 'false' });
    const tenant = text('q-tenant', params.get('tenant'));
    const subject = text('q-subject', params.get('subject'));
    const actor = text('q-actor', params.get('actor'));
    const target = text('q-target', params.get('target'));
    const chosen = new Set((params.get('action') || '').split(',').filter(Boolean));
    const action = h('select', { id: 'q-action', name: 'q-action', multiple: true, size: 6 },
      ACTIONS.filter((a) => a !== 'ACTION_UNSPECIFIED').map((a) => h('option', { value: a, selected: chosen.has(a) }, actionLabel(a))));
    const outcome = h('select', { id: 'q-outcome', name: 'q-outcome' }, h('option', { value: '' }, 'Any'),
      OUTCOMES.filter((o) => o !== 'OUTCOME_UNSPECIFIED').map((o) => h('option', { value: o, selected: params.get('outcome') === o }, outcomeLabel(o))));
    const when = (id, param) => h('input', { id, name: id, type: 'datetime-local', step: 1, value: params.get(param) || '' });
    const from = when('q-from', 'from');
    const to = when('q-to', 'to');
    const occFrom = when('q-occ-from', 'occ_from');
    const occTo = when('q-occ-to', 'occ_to');
    const run = h('button', { id: 'q-run', type: 'submit', class: 'primary' }, 'Search');
    const formError = h('p', { id: 'search-error', class: 'error', role: 'alert' });
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

    const form = h('form', { id: 'search-form', class: 'filters', novalidate: true },
      field('q-tenant', 'Tenant', tenant, 'Empty: any tenant, or the tenant-less namespace when an id is given.'),
      field('q-subject', 'Subject (actor or target id)', subject),
      field('q-actor', 'Actor id', actor),
      field('q-target', 'Target id', target),
      field('q-action', 'Actions', action, 'None selected: any action. Ctrl-click (⌘-click) or Shift with the arrow keys selects several.'),
      field('q-outcome', 'Outcome', outcome),
      field('q-from', 'Logged from (the log’s clock)', from, `When tlogd logged it: the entry’s time, proven. Your time zone (${zone}).`),
      field('q-to', 'Logged before (the log’s clock)', to, `Your time zone (${zone}).`),
      field('q-occ-from', 'Occurred from (the client’s clock)', occFrom, `When it happened, as the recording client stated: the log does not vouch for it. Your time zone (${zone}).`),
      field('q-occ-to', 'Occurred before (the client’s clock)', occTo, `Your time zone (${zone}).`),
      h('div', { class: 'actions' }, run, h('button', { type: 'reset' }, 'Clear filters')),
      formError);

    const badge = h('p', { id: 'results-badge', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } }, 'Set filters and search. Results are verified in this browser.');
    const results = h('div', { id: 'results-area' });
    const nextBtn = h('button', { id: 'next-page', type: 'button', hidden: true, 'aria-describedby': 'next-hint' }, 'Next page');
    const nextHint = h('p', { id: 'next-hint', class: 'hint', hidden: true },
      'Each page examines a bounded number of entries, so a page may hold fewer than 50 events, even none, and still have a next page. Later pages use the same checkpoint as the first.');

    const resultsHeading = h('h2', { id: 'results-h', tabindex: '-1' }, 'Results');
    let st = null; // {q, pager, page, token, prev, erasures}

    function request() {
      const q = {};
      const put1 = (k, v) => { if (v.trim()) q[k] = v.trim(); };
      put1('tenant', tenant.value);
      put1('subject_id', subject.value);
      put1('actor_id', actor.value);
      put1('target_id', target.value);
      const acts = [...action.selectedOptions].map((o) => o.value);
      if (acts.length) q.actions = acts;
      if (outcome.value) q.outcome = outcome.value;
      if (from.value) q.logged_from = localInputToISO(from.value);
      if (to.value) q.logged_before = localInputToISO(to.value);
      if (occFrom.value) q.occurred_from = localInputToISO(occFrom.value);
      if (occTo.value) q.occurred_before = localInputToISO(occTo.value);
      if (q.logged_from && q.logged_before && q.logged_from >= q.logged_before) throw new Error('“Logged from” must be before “Logged before”');
      if (q.occurred_from && q.occurred_before && q.occurred_from >= q.occurred_before) throw new Error('“Occurred from” must be before “Occurred before”');
      return q;
    }

    // hideNext hides Next page, moving the keyboard focus off it first.
    function hideNext() {
      if (document.activeElement === nextBtn) resultsHeading.focus();
      nextBtn.hidden = nextHint.hidden = true;
    }

    async function loadPage() {
      setBusy(run, true);
      setBusy(nextBtn, true);
      setState(badge, 'verifying', `Loading page ${st.page} and verifying it…`);
      try {
        const req = { ...st.q, page_size: PAGE_SIZE, tree_size: st.pager.cp ? st.pager.cp.size : 0, page_token: st.token };
        const resp = await rpc(AUDIT + 'QueryEvents', req);
        if (ctx.signal.aborted) return;
        let cp;
        try {
          cp = await st.pager.check(resp.checkpoint);
        } catch (e) {
          if (ctx.signal.aborted) return;
          setState(badge, 'failed', `✗ The answer’s checkpoint is not trusted: ${e.message}. No result of this page is shown as verified.`);
          const rows = (resp.events || []).map((pe) => ({ v: { index: Number(pe.entry && pe.entry.index), erased: false, event: null }, ok: false, reason: 'checkpoint not trusted' }));
          show(rows, resp, null);
          return;
        }
        st.erasures ??= new Erasures(cp);
        const { rows, prev } = await verifyEvents(cp, resp.events || [], st.q, st.erasures, st.prev);
        if (ctx.signal.aborted) return;
        st.prev = prev;
        const bad = rows.filter((r) => !r.ok).length;
        if (bad) setState(badge, 'failed', `✗ ${bad} of ${plural(rows.length, 'event')} on page ${st.page} FAILED verification against tree size ${cp.size}: see the last column. Do not rely on them.`);
        else if (rows.length === 0) setState(badge, 'verified', `✓ Page ${st.page}: no events; the answer’s checkpoint (tree size ${cp.size}) is verified.`);
        else setState(badge, 'verified', `✓ Page ${st.page}: ${plural(rows.length, 'event')}, every one proven in the verified tree of size ${cp.size}.`);
        show(rows, resp, cp);
      } catch (e) {
        if (ctx.signal.aborted) return;
        setState(badge, 'failed', 'The search failed: nothing was verified.');
        put(results, errorEl(e));
        hideNext();
      } finally {
        setBusy(run, false);
        setBusy(nextBtn, false);
      }
    }

    function show(rows, resp, cp) {
      st.token = resp.next_page_token || '';
      if (st.token) nextBtn.hidden = nextHint.hidden = false;
      else hideNext();
      let empty = null;
      if (rows.length === 0) {
        empty = st.token
          ? 'No events on this page, but the log has more entries to examine: choose Next page (each page examines a bounded number of entries).'
          : st.page === 1 ? 'No events match. Widen the time range or clear the action filter.' : 'No more events: this was the last page.';
      }
      put(results,
        h('table', { id: 'results', class: 'events' },
          h('caption', null, `Page ${st.page}`, cp ? ` · against tree size ${cp.size}` : '', st.token ? ' · more pages follow' : ' · last page'),
          headRow(EVENT_COLUMNS),
          h('tbody', null, rows.map((r) => eventRow(r.v, r.ok, r.reason)))),
        empty ? h('p', { id: 'results-empty', class: 'empty' }, empty) : null);
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (isBusy(run)) return;
      formError.textContent = '';
      let q;
      try { q = request(); } catch (err) { formError.textContent = `${err.message}. Correct it and search again.`; return; }
      st = { q, pager: new Pager(), page: 1, token: '', prev: null, erasures: null };
      const share = new URLSearchParams();
      for (const [k, v] of [['tenant', tenant.value], ['subject', subject.value], ['actor', actor.value], ['target', target.value],
        ['action', (q.actions || []).join(',')], ['outcome', outcome.value], ['from', from.value], ['to', to.value],
        ['occ_from', occFrom.value], ['occ_to', occTo.value]]) if (v) share.set(k, v.trim());
      history.replaceState(null, '', '#/search' + (share.toString() ? '?' + share : ''));
      loadPage();
    });
    form.addEventListener('reset', () => { formError.textContent = ''; });
    nextBtn.addEventListener('click', () => {
      if (isBusy(nextBtn) || !st || !st.token) return;
      st.page++;
      loadPage().then(() => results.querySelector('caption')?.scrollIntoView({ block: 'nearest' }));
    });

    put(root,
      h('h1', { tabindex: '-1' }, 'Search events'),
      h('p', { class: 'lead' }, 'Each result is proven in a checkpoint verified with your pinned key, and decoded here from the bytes the log committed to. A search cannot prove that no event was left out: a subject’s timeline can. Results carry payloads, so each search is recorded in the log.'),
      form,
      h('section', { 'aria-labelledby': 'results-h' },
        resultsHeading, badge, results, h('div', { class: 'row' }, nextBtn, nextHint)));

    if ([...params.keys()].length) form.requestSubmit();
  },
};
