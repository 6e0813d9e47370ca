// Drift: compare the tenant's grants with an approved baseline (GetDrift);
// every item's claim and the event behind it are checked here.
import { h, put, setState, field, errorEl, timeEl, setBusy, isBusy } from '../dom.js';
import { rpc, AUDIT } from '../api.js';
import { Pager } from '../trust.js';
import { checkProven } from '../proven.js';
import { parseBaseline, driftItemProblem, driftKey, compareKeys, KINDS, STATUSES } from '../checks.js';
import { actionLabel, plural, u64 } from '../format.js';
import { subjectLink, verifiedEl, statedEl, headRow } from '../rows.js';

const MAX_PAGES = 100;

export default {
  title: 'Drift',
  render(root, params, ctx) {
    const file = h('input', { id: 'baseline-file', name: 'baseline-file', type: 'file', accept: '.json,application/json' });
    const run = h('button', { id: 'drift-run', type: 'submit', class: 'primary' }, 'Compare');
    const formError = h('p', { id: 'drift-error', class: 'error', role: 'alert' });
    const badge = h('p', { id: 'drift-badge', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } },
      'Choose a baseline file to compare the log’s grants with.');
    const area = h('div', { id: 'drift-area' });

    async function compare() {
      if (isBusy(run)) return;
      formError.textContent = '';
      const f = file.files && file.files[0];
      if (!f) {
        formError.textContent = 'Choose a baseline file first (JSON: {"tenant": …, "subjects": {…}}).';
        file.focus();
        return;
      }
      // Busy, and the old report gone, before the first await: a second
      // click or change must neither run beside this one nor see its state.
      setBusy(run, true);
      put(area);
      setState(badge, 'verifying', `Comparing the log with ${f.name}…`);
      let b;
      try {
        b = parseBaseline(await f.text());
      } catch (e) {
        formError.textContent = `${f.name}: ${e.message}. Fix the file and choose it again.`;
        setState(badge, 'idle', 'Choose a baseline file to compare the log’s grants with.');
        setBusy(run, false);
        return;
      }
      const pager = new Pager();
      const rows = [];
      let token = '';
      let replayed = null;
      let total = null;
      let prevKey = null;
      try {
        for (let pages = 0; ; pages++) {
          const resp = await rpc(AUDIT + 'GetDrift', { tenant: b.tenant, baseline: b.subjects, page_size: 1000, page_token: token, tree_size: pager.cp ? pager.cp.size : 0 });
          if (ctx.signal.aborted) return;
          const cp = await pager.check(resp.checkpoint);
          if (replayed == null) {
            replayed = u64(resp.events_replayed);
            total = u64(resp.total_items);
          }
          for (const it of resp.items || []) {
            let v = null;
            let problem = '';
            if (it.event) {
              v = await checkProven(cp, it.event);
              if (!v.ok) problem = v.reason;
              else if (v.erased || v.links == null) problem = `entry ${v.index} is not a readable audit event`;
            }
            if (!problem) problem = driftItemProblem(b, it, v && v.event);
            const key = driftKey(it);
            if (!problem && prevKey && compareKeys(key, prevKey) <= 0) problem = 'out of order or repeated in the report';
            prevKey = key;
            rows.push({ it, v, ok: !problem, problem });
          }
          token = resp.next_page_token || '';
          if (!token) break;
          if ((resp.items || []).length === 0) throw Object.assign(new Error('the server returned an empty page that is not the last'), { name: 'VerifyError' });
          if (pages + 1 >= MAX_PAGES) throw new Error(`the report has more than ${MAX_PAGES} pages: use tlogctl drift for a report this large`);
        }
        if (ctx.signal.aborted) return;
        const bad = rows.filter((r) => !r.ok).length;
        const cp = pager.cp;
        // What the page cannot check: that no item was left out, that a
        // never-granted grant was never given, and the counts.
        const counts = `The log states it replayed ${plural(replayed, 'grant event')} at tree size ${cp.size}`;
        const caveat = 'The server could have left items out: tlogctl drift -complete replays the whole log itself and cannot be misled.';
        if (bad) setState(badge, 'failed', `✗ ${bad} of ${plural(rows.length, 'item')} FAILED verification: see the last column; do not rely on them. ${counts}.`);
        else if (rows.length === 0) setState(badge, 'empty', `No drift reported: the log states every grant matches the baseline. ${counts}. ${caveat}`);
        else setState(badge, 'verified', `✓ ${plural(rows.length, 'item')}, each checked here: against the baseline and, where it cites one, against its proven event. `, h('span', { class: 'caveat' }, `${counts}. ${caveat}`));
        const warn = total != null && total !== rows.length
          ? h('p', { class: 'warning' }, `The server said the report has ${total} items but sent ${rows.length}.`) : null;
        put(area, warn, rows.length === 0
          ? h('p', { id: 'drift-empty', class: 'empty' }, 'No drift reported: as the log states, every grant matches the baseline.')
          : h('table', { id: 'drift-items', class: 'events' },
            h('caption', null, `Drift of tenant “${b.tenant}” from ${f.name}`),
            headRow(['Subject', 'Kind', 'Name', 'Status', 'Event behind it', 'Verification']),
            h('tbody', null, rows.map(({ it, v, ok, problem }) => {
              const st = STATUSES[it.status];
              const ev = v && v.event;
              return h('tr', { class: 'drift-item', dataset: { verified: ok ? 'yes' : 'no', index: v && v.index != null ? String(v.index) : null, status: st ? st.key : it.status } },
                h('th', { scope: 'row' }, subjectLink(b.tenant, it.subject_id, 'subject')),
                h('td', null, KINDS[it.kind] || it.kind),
                h('td', null, it.name),
                h('td', null, h('span', { class: 'status ' + (st ? st.key : '') }, st ? st.words : it.status), st ? h('span', { class: 'sub' }, st.long) : null),
                h('td', null, ev
                  ? [`entry ${v.index}: `, actionLabel(ev.action, ev.custom_action), ' by ', subjectLink(ev.tenant, ev.actor && ev.actor.id, 'actor'), ', ', timeEl(v.time)]
                  : v ? `entry ${v.index ?? '?'}` : h('span', { class: 'muted' }, 'none cited: the log states no event gave it')),
                h('td', { class: 'verification' }, ok
                  ? (v ? verifiedEl(true) : statedEl('no event gave it (that the baseline approves it is checked)'))
                  : verifiedEl(false, problem)));
            }))));
      } catch (e) {
        if (ctx.signal.aborted) return;
        setState(badge, 'failed', 'The comparison failed: nothing was verified.');
        put(area, errorEl(e));
      } finally {
        setBusy(run, false);
      }
    }

    const form = h('form', { id: 'drift-form', novalidate: true },
      field('baseline-file', 'Baseline file (JSON)', file,
        'The JSON form of a tlogctl drift baseline: {"tenant": "acme", "subjects": {"alice": {"roles": ["viewer"], "permissions": [], "groups": []}}}. YAML is not read here: convert YAML baselines to JSON (same fields).'),
      h('div', { class: 'actions' }, run), formError);
    form.addEventListener('submit', (e) => { e.preventDefault(); compare(); });
    file.addEventListener('change', () => { if (file.files && file.files.length) compare(); });

    put(root,
      h('h1', { tabindex: '-1' }, 'Drift from a baseline'),
      h('p', { class: 'lead' }, 'The log replays the tenant’s successful role, permission and group events and lists every grant held but not approved, every approved grant taken away, and every approved grant never given. Each item is checked here: its event’s proof, and that the event alone causes it. The report cites events with payloads, so it is recorded in the log.'),
      form,
      h('section', { 'aria-labelledby': 'drift-h' }, h('h2', { id: 'drift-h' }, 'Report'), badge, area));
  },
};
