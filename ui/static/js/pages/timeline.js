// Subject timeline: every event naming a subject, each proven, and the
// subject's chain of back-links checked here, so a missing event shows.
import { h, put, setState, field, errorEl, setBusy, isBusy } from '../dom.js';
import { rpc, AUDIT } from '../api.js';
import { Pager } from '../trust.js';
import { checkProven, Erasures } from '../proven.js';
import { checkChain } from '../verify.js';
import { plural, u64 } from '../format.js';
import { timelineItem } from '../rows.js';

const PAGE_SIZE = 200;
const MAX_PAGES = 50; // 10,000 events

export default {
  title: 'Subject timeline',
  render(root, params, ctx) {
    const tenant = h('input', { id: 'tl-tenant', name: 'tl-tenant', type: 'text', value: params.get('tenant') || '', autocomplete: 'off', spellcheck: 'false' });
    const subject = h('input', { id: 'tl-subject', name: 'tl-subject', type: 'text', value: params.get('subject') || '', autocomplete: 'off', spellcheck: 'false', required: true });
    const run = h('button', { id: 'tl-run', type: 'submit', class: 'primary' }, 'Show timeline');
    const formError = h('p', { id: 'tl-error', class: 'error', role: 'alert' });
    const form = h('form', { id: 'timeline-form', class: 'filters', novalidate: true },
      field('tl-tenant', 'Tenant', tenant, 'Empty: the tenant-less namespace.'),
      field('tl-subject', 'Subject id (actor or target)', subject),
      h('div', { class: 'actions' }, run), formError);
    const progress = h('p', { id: 'tl-progress', role: 'status', class: 'hint' });
    const chain = h('div', { id: 'chain', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } }, 'Choose a subject to check its timeline.');
    const list = h('div', { id: 'timeline-area' });

    async function load(t, s) {
      setBusy(run, true);
      put(list);
      setState(chain, 'verifying', `Reading and verifying the timeline of “${s}”…`);
      const pager = new Pager();
      const items = []; // {v, ok, reason}
      let resp = null;
      let token = '';
      let pages = 0;
      let problem = null; // {index, reason}
      let capped = false;
      try {
        let erasures = null;
        for (;;) {
          resp = await rpc(AUDIT + 'GetTimeline', { tenant: t, subject_id: s, page_size: PAGE_SIZE, page_token: token, tree_size: pager.cp ? pager.cp.size : 0 });
          if (ctx.signal.aborted) return;
          const cp = await pager.check(resp.checkpoint);
          erasures ??= new Erasures(cp);
          pages++;
          for (const pe of resp.events || []) {
            const v = await checkProven(cp, pe);
            let ok = v.ok;
            let reason = v.reason;
            if (ok && v.erased) {
              try { await erasures.check(v.index, v.erasedBy); } catch (e) { ok = false; reason = `erasure not proven: ${e.message}`; }
            }
            if (!ok && !problem) problem = { index: v.index, reason: `entry ${v.index ?? '?'} does not verify: ${reason}` };
            items.push({ v, ok, reason });
          }
          token = resp.next_page_token || '';
          put(progress, `Read ${plural(items.length, 'event')} in ${plural(pages, 'page')}${token ? '; reading more…' : '.'}`);
          if (!token) break;
          if ((resp.events || []).length === 0) {
            problem ??= { index: null, reason: 'the server returned an empty page that is not the last' };
            break;
          }
          if (pages >= MAX_PAGES) { capped = true; break; }
        }
        if (ctx.signal.aborted) return;
        const cp = pager.cp;
        if (!problem && !capped) {
          const r = checkChain(s, t, items.map(({ v }) => ({ index: v.index, links: v.links, event: v.event, subjectRoles: v.subjectRoles })));
          if (!r.ok) problem = { index: r.breakIndex, reason: r.reason };
        }
        const last = items.length ? items[items.length - 1].v.index : null;
        if (!problem && !capped) {
          const latest = resp.has_events ? u64(resp.latest_index, 'the index of the subject’s latest event') : null;
          if (!resp.has_events && last != null) problem = { index: last, reason: `the log says “${s}” has no events, yet returned some` };
          else if (resp.has_events && last == null) problem = { index: latest, reason: `the log says “${s}”’s latest event is entry ${latest}, but returned none` };
          else if (resp.has_events && latest !== last) problem = { index: latest, reason: `the timeline ends at entry ${last}, but the log says “${s}”’s latest event is entry ${latest}` };
        }
        if (problem) {
          setState(chain, 'broken', h('div', { role: 'alert' },
            h('strong', null, `✗ Chain broken${problem.index != null ? ' at entry ' + problem.index : ''}: `), problem.reason,
            '. An event of this subject may have been left out or altered: do not rely on this timeline, and tell the log’s operator.'));
        } else if (capped) {
          setState(chain, 'incomplete', `Only the first ${plural(items.length, 'event')} were read (the page cap): the chain is checked only when the whole timeline is read. Use tlogctl timeline for a subject this large.`);
        } else if (items.length === 0) {
          // The log's word alone: nothing here proves it.
          setState(chain, 'empty', `No event names “${s}” in ${t ? 'tenant “' + t + '”' : 'the tenant-less namespace'} at tree size ${cp.size}: check the spelling and the tenant (ids are per tenant).`);
        } else {
          setState(chain, 'intact', `✓ The chain links up through ${plural(items.length, 'event')} in the verified tree of size ${cp.size}: each links back to the one before, so none between them was left out. `,
            h('span', { class: 'caveat' }, `The last, entry ${last}, is the latest the log states for “${s}”: a log could hide newer events, which anything that reads every entry (tlogctl export, tlogctl drift -complete) would catch.`));
        }
        put(list, items.length
          ? h('ol', { id: 'timeline', class: 'timeline', 'aria-label': `Timeline of ${s}` },
            items.map(({ v, ok, reason }) => {
              const li = timelineItem(v, ok, reason);
              if (problem && problem.index === v.index) {
                li.classList.add('break');
                li.prepend(h('p', { class: 'bad' }, `✗ The chain breaks here: ${problem.reason}`));
              }
              return li;
            }))
          : null);
      } catch (e) {
        if (ctx.signal.aborted) return;
        const trust = e.name === 'TrustError';
        setState(chain, trust ? 'broken' : 'idle', trust ? h('div', { role: 'alert' }, `✗ The answer’s checkpoint is not trusted: ${e.message}.`) : 'Not checked.');
        put(list, errorEl(e));
      } finally {
        setBusy(run, false);
      }
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (isBusy(run)) return;
      formError.textContent = '';
      const s = subject.value.trim();
      if (!s) {
        formError.textContent = 'Enter a subject id: the actor or target id whose events you want.';
        subject.focus();
        return;
      }
      const t = tenant.value.trim();
      history.replaceState(null, '', '#/timeline?' + new URLSearchParams({ tenant: t, subject: s }));
      load(t, s);
    });

    put(root,
      h('h1', { tabindex: '-1' }, 'Subject timeline'),
      h('p', { class: 'lead' }, 'Every event naming a subject, in log order. Each event’s entry links back to the subject’s previous event, so an event left out breaks the chain, and this page says where. Timelines carry payloads, so each read is recorded in the log.'),
      form,
      h('section', { 'aria-labelledby': 'tl-h' }, h('h2', { id: 'tl-h' }, 'Timeline'), chain, progress, list));

    if (subject.value) form.requestSubmit();
  },
};
