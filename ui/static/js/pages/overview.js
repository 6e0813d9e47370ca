// Overview: the latest checkpoint, verified in this browser (signature with
// the pinned key, consistency with the last one this browser trusted), its
// cosignatures, how old the newest entry is and how fast the log grows;
// and the evidence of an alarm this browser keeps (trust.js).
import { h, put, setState, timeEl, errorEl, setBusy, blobURL } from '../dom.js';
import { rpc, LOG, getLogInfo } from '../api.js';
import { checkLatest, openOnly, storedAlarm, clearAlarm, pinnedOrigin, trustStatus, unproven, lastSeen, forgetDropped } from '../trust.js';
import { unprovenText } from '../state.js';
import { alarmText, alarmTitle, alarmFileName } from '../alarm.js';
import { b64decode, b64encode, equalBytes, leafHash, parseEntry, verifyRange, verifyConsistency,
  parseVerifierKey, verifyCosignature } from '../verify.js';
import { u64, age, appendRate, plural, clean, describeError } from '../format.js';

const WITNESS_KEYS = 'tlogd.witness-keys';
const RATE_WINDOW = 1000;

export function witnessKeys() {
  try { return (localStorage.getItem(WITNESS_KEYS) || '').split('\n').map((l) => l.trim()).filter(Boolean); } catch { return []; }
}

// recentEntries fetches the last up to RATE_WINDOW entries of cp's tree
// (no payloads) and proves them as a range against cp. Returns their log
// times, in index order.
async function recentEntries(cp) {
  const n = Math.min(RATE_WINDOW, cp.size);
  const start = cp.size - n;
  const per = Math.max(1, Number((await getLogInfo()).max_entries_per_call) || 1000);
  const entries = [];
  while (entries.length < n) {
    const at = start + entries.length;
    const resp = await rpc(LOG + 'GetEntries', { start: at, count: Math.min(per, n - entries.length), include_payloads: false });
    const got = resp.entries || [];
    if (got.length === 0) throw new Error(`the server returned no entries from ${at}`);
    for (const e of got) {
      if (entries.length === n) break;
      if (u64(e.index, 'entry index') !== start + entries.length) throw new Error(`the server returned entry ${e.index} where ${start + entries.length} was due`);
      entries.push(b64decode(e.entry));
    }
  }
  const [first, last] = await Promise.all([
    rpc(LOG + 'GetInclusionProof', { index: start, tree_size: cp.size }),
    rpc(LOG + 'GetInclusionProof', { index: cp.size - 1, tree_size: cp.size }),
  ]);
  const leaves = await Promise.all(entries.map(leafHash));
  await verifyRange(start, leaves, cp.size, (first.hashes || []).map(b64decode), (last.hashes || []).map(b64decode), cp.root);
  return entries.map((e) => parseEntry(e).time);
}

// cosignatureLines checks every cosignature line of the latest checkpoint
// and of the cosigned one (proven consistent with the latest first).
async function cosignatureLines(cp, text, cosigned) {
  const sources = [{ text, cp }];
  if (cosigned && cosigned !== text) {
    const ccp = await openOnly(cosigned);
    if (ccp.size > cp.size) throw new Error(`the cosigned checkpoint (size ${ccp.size}) is larger than the latest (size ${cp.size})`);
    if (ccp.size === cp.size) {
      if (!equalBytes(ccp.root, cp.root)) throw new Error(`the cosigned checkpoint has another root than the latest at size ${cp.size}: possible fork`);
    } else {
      const p = await rpc(LOG + 'GetConsistencyProof', { first_tree_size: ccp.size, second_tree_size: cp.size });
      await verifyConsistency(ccp.size, cp.size, (p.hashes || []).map(b64decode), ccp.root, cp.root);
    }
    sources.push({ text: cosigned, cp: ccp });
  }
  const keys = witnessKeys().map((k) => { try { return { k, p: parseVerifierKey(k) }; } catch { return null; } }).filter(Boolean);
  const lines = [];
  for (const s of sources) {
    for (const c of s.cp.cosignatures || []) {
      const key = keys.find((x) => x.p.name === c.name && x.p.keyHash === c.keyHash);
      let state = 'unchecked';
      let note = 'not checked: pin witness keys to check';
      if (key) {
        try {
          const r = await verifyCosignature(s.text, key.k);
          state = 'verified';
          note = ['verified, cosigned ', timeEl(r.time * 1000)];
        } catch (e) {
          state = 'failed';
          note = `FAILED: ${e.message}`;
        }
      }
      lines.push(h('li', { class: 'cosig', dataset: { state } }, h('strong', null, c.name), ` on size ${s.cp.size}: `, note));
    }
  }
  return lines;
}

// failureEl says why the latest checkpoint is not trusted; alarm: the
// evidence is shown below it (alarmEl).
function failureEl(err, alarm) {
  const hint = err.kind === 'signature'
    ? 'Check that the pinned key is the one the operator published (sign out and pin it again); if it is, this server is not serving the log you pinned.'
    : alarm ? 'Do not rely on this log’s answers. Download the evidence below and give it to the operator; tlogctl monitor can record evidence too.'
      : 'Do not rely on this log’s answers. Keep this page open, note both checkpoints, and tell the operator; tlogctl monitor can record evidence. This browser keeps the checkpoint it trusted.';
  return h('div', { role: 'alert', class: 'failure' },
    h('p', null, h('strong', null, '✗ Checkpoint check FAILED. '), alarm && alarm.message === err.message ? 'See the evidence below.' : err.message),
    err.old && err.now && !alarm ? h('dl', { class: 'pair' },
      h('dt', null, 'Trusted before'), h('dd', null, `size ${err.old.size}, root `, h('code', null, err.old.root), err.old.seen_at ? ` (seen ${err.old.seen_at})` : ''),
      h('dt', null, 'Shown now'), h('dd', null, `size ${err.now.size}, root `, h('code', null, err.now.root))) : null,
    h('p', null, hint));
}

// alarmEl shows a stored alarm's evidence: both checkpoints, as text and
// as a file to download (url), and the button that clears it.
function alarmEl(origin, a, url, onClear) {
  const cp = (id, label, p) => (p ? [
    h('h4', { id: id + '-h' }, label, `: size ${p.size}`),
    h('p', { class: 'hint' }, 'Root (base64) ', h('code', null, p.root), p.seen_at ? [', trusted since ', timeEl(Date.parse(p.seen_at))] : null),
    p.checkpoint ? h('pre', { id, class: 'note', tabindex: '0', 'aria-labelledby': id + '-h' }, p.checkpoint)
      : h('p', { class: 'muted' }, 'Its signed text was not kept: this browser trusted it before the dashboard kept checkpoint texts.'),
  ] : null);
  const clear = h('button', { id: 'alarm-clear', type: 'button' }, 'I have reported this: clear the alarm');
  clear.addEventListener('click', onClear);
  return h('section', { class: 'alarm', 'aria-labelledby': 'alarm-h' },
    h('h3', { id: 'alarm-h' }, `✗ ${alarmTitle(a)}: evidence kept in this browser`),
    h('p', null, a.detected_at ? ['Detected ', timeEl(Date.parse(a.detected_at)), ': '] : null, clean(a.message), '.'),
    h('p', null, 'The alarm stays, here and in the header, until you clear it, even if the log’s later answers check out: a log that showed two views may show you the honest one now. Give the evidence to the log’s operator and to whoever relies on the log.'),
    cp('alarm-trusted', 'Checkpoint this browser trusted', a.trusted),
    cp('alarm-shown', 'Checkpoint the log showed', a.shown),
    h('div', { class: 'row' },
      h('a', { id: 'alarm-download', href: url, download: alarmFileName(origin, a), class: 'download' }, 'Download the evidence (text file)'),
      clear));
}

// unprovenEl shows the checkpoints the log signed and has not proven
// consistent with the trusted one (trust.js), with the file to download,
// and the count of those seen and not kept, which the user may forget.
function unprovenEl(origin, list, url, onForget) {
  const n = list.items.length;
  const them = n === 1 ? 'it' : 'them';
  const forget = h('button', { id: 'unproven-forget', type: 'button' }, 'Forget the checkpoints not kept');
  forget.addEventListener('click', onForget);
  return h('section', { class: 'unproven', 'aria-labelledby': 'unproven-h' },
    h('h3', { id: 'unproven-h' }, `⚠ ${plural(n + list.dropped, 'checkpoint')} the log has not proven`),
    n ? h('p', null, `The log signed ${n === 1 ? 'this checkpoint' : 'these checkpoints'}, but failed to prove ${them} consistent with the one this browser trusts. `,
      `This browser does not trust ${them} and asks for the proof at every check. An outage explains a few failures; a log that never proves a checkpoint it signed may be showing you another history.`) : null,
    n ? h('ul', { id: 'unproven-list' }, list.items.map((i) => h('li', { class: 'unproven-item' },
      `size ${i.size}, root `, h('code', null, i.root), ': first seen ', timeEl(Date.parse(i.first_seen)),
      `, ${plural(i.failures, 'failed check')}; last error: ${i.error}`))) : null,
    list.dropped ? h('p', { id: 'unproven-dropped' }, `${plural(list.dropped, 'more checkpoint was', 'more checkpoints were')} seen and not proven, and not kept (this browser keeps at most 256): they can never be proven, so the log stays not verified until you forget them. Do so once you have checked the log another way (tlogctl monitor, a witness).`) : null,
    h('div', { class: 'row' },
      n ? h('a', { id: 'unproven-download', href: url, download: `tlogd-unproven-${origin.replace(/[^A-Za-z0-9.-]+/g, '_')}.txt`, class: 'download' },
        'Download the checkpoints (text file)') : null,
      list.dropped ? forget : null));
}

// shownArea is an element that shows the value last given to show
// (compared as JSON; null: nothing), with a text file of it at a blob URL
// kept as long as it is shown.
function shownArea(id) {
  const area = h('div', { id });
  let shown = '';
  let url = null;
  return {
    area,
    show(value, text, render) {
      const json = value ? JSON.stringify(value) : '';
      if (json === shown) return;
      shown = json;
      if (url) URL.revokeObjectURL(url);
      const file = value ? text(value) : null;
      url = file ? blobURL([file], 'text/plain') : null;
      put(area, value ? render(value, url) : null);
    },
    close() { if (url) URL.revokeObjectURL(url); },
  };
}

export default {
  title: 'Overview',
  render(root, params, ctx) {
    const badge = h('div', { id: 'badge', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'verifying' } }, 'Verifying the latest checkpoint…');
    const dd = (id) => h('dd', { id }, h('span', { class: 'muted' }, '…'));
    const f = { origin: dd('cp-origin'), size: dd('cp-size'), root: dd('cp-root'), age: dd('cp-age'), rate: dd('append-rate') };
    const checked = h('p', { class: 'hint', id: 'cp-checked' });
    const problem = h('div', { id: 'overview-error' });
    const alarmArea = shownArea('alarm');
    const unprovenArea = shownArea('unproven');
    const cosigs = h('ul', { id: 'cp-cosigs', class: 'plain' }, h('li', { class: 'muted' }, '…'));
    const wk = h('textarea', { id: 'witness-keys', rows: 3, spellcheck: 'false', 'aria-describedby': 'witness-hint' });
    wk.value = witnessKeys().join('\n');
    const wkMsg = h('p', { id: 'witness-msg', role: 'status' });
    const refreshBtn = h('button', { id: 'refresh', type: 'button' }, 'Refresh now');

    let last = null; // {size, times}
    let busy = false;
    let again = false; // refresh once more when the running one ends
    let latest = null;

    // refreshSoon refreshes after a button that went away: now, or once
    // the running check (which may have started before) ends.
    function refreshSoon() {
      heading.focus();
      if (busy) again = true;
      else refresh();
    }

    // showUnproven shows the log's unproven checkpoints, if any.
    function showUnproven(origin) {
      const list = unproven(origin);
      unprovenArea.show(list.items.length || list.dropped ? list : null,
        (l) => (l.items.length ? unprovenText(origin, lastSeen(origin), l) : null),
        (l, url) => unprovenEl(origin, l, url, () => {
          if (!confirm('Forget the checkpoints this browser saw and did not keep? They were never proven.')) return;
          forgetDropped(origin);
          showUnproven(origin);
          refreshSoon();
        }));
    }

    // showAlarm shows the stored alarm of the log (origin), if any, and
    // returns it.
    function showAlarm(origin) {
      const a = storedAlarm(origin);
      alarmArea.show(a, (x) => alarmText(origin, x), (x, url) => alarmEl(origin, x, url, () => {
        if (!confirm('Clear the alarm? Do it only once you have reported it and kept the evidence: this browser will then trust the log again if its next checkpoints check out.')) return;
        clearAlarm(origin);
        showAlarm(origin);
        setState(badge, 'verifying', 'Alarm cleared: verifying the latest checkpoint…');
        refreshSoon();
      }));
      return a;
    }

    async function refresh() {
      if (busy || ctx.signal.aborted) return;
      busy = true;
      setBusy(refreshBtn, true);
      try {
        const { cp, text, cosigned } = await checkLatest();
        if (ctx.signal.aborted) return;
        latest = { cp, text, cosigned };
        put(problem);
        const a = showAlarm(cp.origin);
        showUnproven(cp.origin);
        const st = trustStatus();
        if (a) {
          setState(badge, 'failed', h('div', { class: 'failure' },
            h('p', null, h('strong', null, '✗ ALARM kept: '), `this browser saw this log sign a checkpoint it must not have (${alarmTitle(a).toLowerCase()}). `,
              `The latest checkpoint, size ${cp.size}, checks out, but do not rely on this log until the alarm is resolved: see the evidence below.`)));
        } else if (st.state === 'failed') {
          setState(badge, 'failed', failureEl(st.error, null));
        } else if (st.state === 'unverified') {
          setState(badge, 'unverified', h('div', { class: 'failure' },
            h('p', null, h('strong', null, '⚠ Not fully verified: '), `the latest checkpoint, size ${cp.size}, checks out, but ${clean(st.error.message)}.`)));
        } else if (st.state !== 'verified') {
          setState(badge, 'verifying', 'Verifying the latest checkpoint…');
        } else {
          setState(badge, 'verified', '✓ Verified in this browser: signed with the pinned key',
            cp.known ? ', and consistent with every checkpoint this browser saw before.'
              : '. It is the first checkpoint of this log this browser has seen: later ones must extend it.');
        }
        put(f.origin, cp.origin);
        put(f.size, plural(cp.size, 'entry', 'entries'));
        put(f.root, h('code', null, b64encode(cp.root)));
        put(checked, 'Checked ', timeEl(Date.now()), '. Refreshes every 10 seconds.');
        await Promise.all([showEntries(cp), showCosigs()]);
      } catch (e) {
        if (ctx.signal.aborted) return;
        put(problem);
        showUnproven(pinnedOrigin());
        if (e.name === 'TrustError') {
          setState(badge, 'failed', failureEl(e, showAlarm(pinnedOrigin())));
          for (const k of ['origin', 'size', 'root', 'age', 'rate']) put(f[k], h('span', { class: 'bad' }, 'not trusted'));
          put(cosigs, h('li', { class: 'muted' }, 'Not checked: the checkpoint is not trusted.'));
        } else {
          // Not verified now: what is shown below is from the last check
          // that succeeded, if any.
          showAlarm(pinnedOrigin());
          if (trustStatus().state !== 'failed') {
            setState(badge, 'unverified', h('div', { class: 'failure' },
              h('p', null, h('strong', null, '⚠ Not verified now: '), `the log did not answer the check (${clean(describeError(e))}). `,
                latest ? `The figures below are from the last check that succeeded, at size ${latest.cp.size}.` : 'Nothing below is verified yet.')));
          } else {
            put(problem, errorEl(e));
          }
        }
        put(checked, 'Checked ', timeEl(Date.now()), '. Refreshes every 10 seconds.');
      } finally {
        busy = false;
        setBusy(refreshBtn, false);
        if (again && !ctx.signal.aborted) {
          again = false;
          refresh();
        }
      }
    }

    async function showEntries(cp) {
      if (cp.size === 0) {
        put(f.age, 'The log is empty: no entries yet.');
        put(f.rate, 'not enough entries yet');
        return;
      }
      try {
        if (!last || last.size !== cp.size) last = { size: cp.size, times: await recentEntries(cp) };
        if (ctx.signal.aborted) return;
        const newest = last.times[last.times.length - 1];
        put(f.age, `entry ${cp.size - 1}, logged ${age(newest)} (`, timeEl(newest), ')');
        put(f.rate, appendRate(last.times));
      } catch (e) {
        const msg = e.name === 'VerifyError' ? `entries not verified: ${e.message}` : `could not read entries: ${e.message}`;
        put(f.age, h('span', { class: 'bad' }, msg));
        put(f.rate, h('span', { class: 'bad' }, msg));
      }
    }

    async function showCosigs() {
      if (!latest) return;
      try {
        const lines = await cosignatureLines(latest.cp, latest.text, latest.cosigned);
        if (ctx.signal.aborted) return;
        put(cosigs, lines.length ? lines : h('li', { class: 'muted' },
          'No cosignatures: the log’s checkpoints are signed by the log alone (it has no witness policy, or no witness has cosigned yet).'));
      } catch (e) {
        put(cosigs, h('li', { class: 'bad', role: 'alert' }, `Cosigned checkpoint not trusted: ${e.message}`));
      }
    }

    const saveBtn = h('button', { id: 'witness-save', type: 'button' }, 'Save witness keys');
    saveBtn.addEventListener('click', () => {
      const lines = wk.value.split('\n').map((l) => l.trim()).filter(Boolean);
      const bad = [];
      for (const l of lines) { try { parseVerifierKey(l); } catch (e) { bad.push(`“${l.slice(0, 40)}”: ${e.message}`); } }
      if (bad.length) {
        wkMsg.className = 'error';
        wkMsg.textContent = `Not saved: ${bad.join('; ')}. Paste one verifier key per line.`;
        return;
      }
      localStorage.setItem(WITNESS_KEYS, lines.join('\n'));
      wkMsg.className = '';
      wkMsg.textContent = lines.length ? `Saved ${plural(lines.length, 'witness key')}.` : 'Witness keys cleared.';
      showCosigs();
    });
    refreshBtn.addEventListener('click', refresh);

    const heading = h('h2', { id: 'cp-h', tabindex: '-1' }, 'Latest checkpoint');
    put(root,
      h('h1', { tabindex: '-1' }, 'Overview'),
      h('section', { 'aria-labelledby': 'cp-h' },
        heading,
        badge,
        alarmArea.area,
        unprovenArea.area,
        problem,
        h('dl', { class: 'facts' },
          h('dt', null, 'Origin'), f.origin,
          h('dt', null, 'Tree size'), f.size,
          h('dt', null, 'Root hash (base64)'), f.root,
          h('dt', null, 'Newest entry'), f.age,
          h('dt', null, 'Append rate'), f.rate),
        h('div', { class: 'row' }, refreshBtn, checked)),
      h('section', { 'aria-labelledby': 'cosig-h' },
        h('h2', { id: 'cosig-h' }, 'Cosignatures'),
        cosigs,
        h('div', { class: 'field' },
          h('label', { for: 'witness-keys' }, 'Witness keys'),
          wk,
          h('p', { class: 'hint', id: 'witness-hint' }, 'One witness verifier key per line, as each witness published it. Stored in this browser only; cosignatures by these keys are checked.')),
        h('div', { class: 'row' }, saveBtn, wkMsg)));

    showAlarm(pinnedOrigin());
    showUnproven(pinnedOrigin());
    refresh();
    const timer = setInterval(refresh, 10000);
    return () => {
      clearInterval(timer);
      alarmArea.close();
      unprovenArea.close();
    };
  },
};
