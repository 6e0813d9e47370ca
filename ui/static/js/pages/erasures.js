// Erasures: the erasure records (ACTION_SUBJECT_ERASED), each verified,
// and for the entries each one erased, proof that the entry itself is
// still in the log: its payload is gone, its commitment stays proven.
import { h, put, setState, errorEl, timeEl, setBusy, isBusy } from '../dom.js';
import { rpc, AUDIT } from '../api.js';
import { Pager } from '../trust.js';
import { checkProven, proveEntry, erasedEntries, pool } from '../proven.js';
import { plural } from '../format.js';
import { subjectLink, verifiedEl } from '../rows.js';

const MAX_PAGES = 20;
const MAX_ENTRIES = 50;

export default {
  title: 'Erasures',
  render(root, params, ctx) {
    const badge = h('p', { id: 'erasures-badge', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'verifying' } }, 'Reading and verifying the erasure records…');
    const area = h('div', { id: 'erasures-area' });
    const reload = h('button', { id: 'erasures-reload', type: 'button' }, 'Reload');

    async function entryItem(cp, index, by) {
      try {
        if (index >= by) throw new Error(`it is not before its erasure record, entry ${by}`);
        const r = await proveEntry(cp, index);
        return h('li', { class: 'erased-entry', dataset: { index: String(index), verified: 'yes' } },
          `entry ${index} (logged `, timeEl(r.time), '): ', h('span', { class: 'ok' }, h('span', { 'aria-hidden': 'true' }, '✓ '), 'erased — commitment still proven'));
      } catch (e) {
        return h('li', { class: 'erased-entry', dataset: { index: String(index), verified: 'no' } }, `entry ${index}: `, verifiedEl(false, e.message));
      }
    }

    async function load() {
      if (isBusy(reload)) return;
      setBusy(reload, true);
      put(area);
      setState(badge, 'verifying', 'Reading and verifying the erasure records…');
      const pager = new Pager();
      const records = [];
      let token = '';
      let capped = false;
      try {
        for (let pages = 0; ; pages++) {
          const q = { actions: ['ACTION_SUBJECT_ERASED'] };
          const resp = await rpc(AUDIT + 'QueryEvents', { ...q, page_size: 100, page_token: token, tree_size: pager.cp ? pager.cp.size : 0 });
          if (ctx.signal.aborted) return;
          const cp = await pager.check(resp.checkpoint);
          for (const pe of resp.events || []) {
            const v = await checkProven(cp, pe);
            let ok = v.ok;
            let reason = v.reason;
            if (ok && (v.erased || !v.event || v.event.action !== 'ACTION_SUBJECT_ERASED')) { ok = false; reason = 'not an erasure record'; }
            records.push({ v, ok, reason });
          }
          token = resp.next_page_token || '';
          if (!token) break;
          if (pages + 1 >= MAX_PAGES) { capped = true; break; }
        }
        const cp = pager.cp;
        if (records.length === 0) {
          setState(badge, 'empty', `No erasure records: as the log states, at the verified tree size ${cp.size} (a search cannot prove that none was left out).`);
          put(area, h('p', { class: 'empty' }, 'No subject was ever erased from this log. Erasures are made by an administrator with tlogctl erase; they appear here once recorded.'));
          return;
        }
        const list = h('ol', { id: 'erasures', class: 'erasures' });
        put(area, list);
        let bad = 0;
        for (const { v, ok, reason } of records) {
          if (ctx.signal.aborted) return;
          const ev = v.event;
          const li = h('li', { class: 'erasure', dataset: { index: String(v.index ?? ''), verified: ok ? 'yes' : 'no' } },
            h('h3', null, `Erasure record, entry ${v.index ?? '?'}`));
          list.append(li);
          if (!ok) {
            bad++;
            li.append(verifiedEl(false, reason));
            continue;
          }
          const erased = erasedEntries(ev);
          const shown = erased.slice(0, MAX_ENTRIES);
          const labels = ev.labels || {};
          li.append(
            h('dl', { class: 'facts' },
              h('dt', null, 'Erased by'), h('dd', null, subjectLink('', ev.actor && ev.actor.id, 'administrator'), labels.via ? ` (via ${labels.via})` : ''),
              h('dt', null, 'When'), h('dd', null, timeEl(v.time), ' (logged)'),
              h('dt', null, 'Reason'), h('dd', null, ev.reason || h('span', { class: 'muted' }, 'none given')),
              h('dt', null, 'Tenant'), h('dd', null, labels.tenant || h('span', { class: 'muted' }, 'none (tenant-less)')),
              h('dt', null, 'Subject key'), h('dd', null, h('code', null, labels.subject_key || '—'), h('span', { class: 'sub' }, 'SHA-256 of the tenant and id: it does not name the subject, but anyone who guesses the id can confirm it.')),
              h('dt', null, 'Record'), h('dd', null, verifiedEl(true))),
            h('h4', null, `${plural(erased.length, 'entry', 'entries')} erased`));
          const ul = h('ul', { class: 'erased-entries plain' });
          li.append(ul);
          if (erased.length > shown.length) li.append(h('p', { class: 'hint' }, `Only the first ${MAX_ENTRIES} are checked here; ${erased.length - MAX_ENTRIES} more are listed in the record.`));
          const items = await pool(shown, 4, (i) => entryItem(cp, i, v.index));
          if (ctx.signal.aborted) return;
          bad += items.filter((x) => x.dataset.verified === 'no').length;
          ul.append(...items);
        }
        const more = capped ? ' Only the first pages of erasure records are shown.' : '';
        if (bad) setState(badge, 'failed', `✗ ${bad} record${bad === 1 ? '' : 's'} or entr${bad === 1 ? 'y' : 'ies'} FAILED verification: see below.${more}`);
        else setState(badge, 'verified', `✓ ${plural(records.length, 'erasure record')} proven in the verified tree of size ${cp.size}; every erased entry shown is still proven in it.${more}`);
      } catch (e) {
        if (ctx.signal.aborted) return;
        setState(badge, 'failed', 'Could not read the erasure records: nothing was verified.');
        put(area, errorEl(e));
      } finally {
        setBusy(reload, false);
      }
    }

    reload.addEventListener('click', load);
    put(root,
      h('h1', { tabindex: '-1' }, 'Erasures'),
      h('p', { class: 'lead' }, 'On a lawful request an administrator erases a subject’s payloads and salts. The record of each erasure (who, when, why, which entries) stays in the log, and so do the erased entries: every checkpoint and proof stays valid. Reading the records reads payloads, so it is recorded in the log.'),
      h('div', { class: 'row' }, reload),
      h('section', { 'aria-labelledby': 'er-h' }, h('h2', { id: 'er-h' }, 'Erasure records'), badge, area));
    load();
  },
};
