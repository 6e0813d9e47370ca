// Export and prove: build, in this browser, the files tlogctl export and
// tlogctl prove write (byte for byte), verify them, then offer them.
import { h, put, setState, field, errorEl, blobURL, setBusy, isBusy } from '../dom.js';
import { rpc, LOG, getLogInfo } from '../api.js';
import { checkLatest, trustCheckpoint, pinnedKey } from '../trust.js';
import { b64decode, leafHash, verifyInclusion, verifyRecord, verifyExport, verifyProofBundle } from '../verify.js';
import { exportHeaderLine, exportRecordLine, exportFileName, recordExtra, proofBundleText, proofFileNames } from '../files.js';
import { u64, plural } from '../format.js';

// MAX_EXPORT caps an export built here: it is held in memory, twice (the
// text and the download). tlogctl export streams any size.
export const MAX_EXPORT = 1_000_000;

function wholeNumber(input, what) {
  const s = input.value.trim();
  if (s === '') return null;
  if (!/^[0-9]+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new Error(`${what} must be a whole number`);
  return Number(s);
}

async function inclusionHashes(cp, index) {
  const p = await rpc(LOG + 'GetInclusionProof', { index, tree_size: cp.size });
  if (u64(p.index) !== index || u64(p.tree_size) !== cp.size) throw new Error(`the server sent the proof of entry ${p.index} in tree ${p.tree_size}, not ${index} in ${cp.size}`);
  return (p.hashes || []).map(b64decode);
}

// buildExport fetches the entries [from, to) of cp's tree and returns the
// export file's text, as client.Export writes it. progress(done).
export async function buildExport({ cp, text, from, to, payloads, vkey, progress, signal }) {
  const [firstProof, lastProof] = await Promise.all([inclusionHashes(cp, from), inclusionHashes(cp, to - 1)]);
  const parts = [exportHeaderLine({ origin: cp.origin, verifierKey: vkey, checkpoint: text, from, to, payloads, firstProof, lastProof })];
  const per = Math.max(1, Number((await getLogInfo()).max_entries_per_call) || 1000);
  for (let at = from; at < to;) {
    if (signal && signal.aborted) throw new DOMException('left the page', 'AbortError');
    const resp = await rpc(LOG + 'GetEntries', { start: at, count: Math.min(per, to - at), include_payloads: payloads });
    const entries = resp.entries || [];
    if (entries.length === 0) throw new Error(`the server returned no entries from ${at}`);
    for (const e of entries) {
      if (at === to) break;
      if (u64(e.index, 'entry index') !== at) throw new Error(`the server returned entry ${e.index} where ${at} was due`);
      const rec = { index: at, entry: b64decode(e.entry) };
      const salt = b64decode(e.salt || '');
      const payload = b64decode(e.payload || '');
      if (payloads && e.erased) {
        if (salt.length || payload.length) throw new Error(`entry ${at} is erased but has a salt or payload`);
        rec.erased = true;
        rec.erasedBy = u64(e.erased_by, 'erased_by');
      } else if (payloads) {
        rec.salt = salt;
        rec.payload = payload;
      } else if (salt.length || payload.length || e.erased) {
        throw new Error(`entry ${at} has a salt, payload or erasure in a read without payloads`);
      }
      parts.push(exportRecordLine(rec));
      at++;
    }
    if (progress) progress(at - from);
  }
  return parts.join('');
}

export default {
  title: 'Export',
  render(root, params, ctx) {
    const urls = [];
    const link = (id, parts, name, label, type) => {
      const url = blobURL(parts, type);
      urls.push(url);
      return h('a', { id, href: url, download: name, class: 'download' }, label);
    };

    // Export.
    const from = h('input', { id: 'export-from', name: 'export-from', type: 'text', inputmode: 'numeric', value: '0', autocomplete: 'off' });
    const to = h('input', { id: 'export-to', name: 'export-to', type: 'text', inputmode: 'numeric', value: '', placeholder: 'whole log', autocomplete: 'off' });
    const payloads = h('input', { id: 'export-payloads', name: 'export-payloads', type: 'checkbox' });
    const run = h('button', { id: 'export-run', type: 'submit', class: 'primary' }, 'Build export');
    const bar = h('progress', { id: 'export-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Export progress' });
    const status = h('div', { id: 'export-status', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } });
    const out = h('div', { id: 'export-out' });

    const exportForm = h('form', { id: 'export-form', class: 'filters', novalidate: true },
      field('export-from', 'First entry', from, 'Index of the first entry (0: the start of the log).'),
      field('export-to', 'Stop before entry', to, `Blank: up to the size of the latest checkpoint (the whole log). This page exports at most ${MAX_EXPORT.toLocaleString('en')} entries at a time: use tlogctl export for more.`),
      h('div', { class: 'field check' }, payloads, h('label', { for: 'export-payloads' }, 'Include payloads and salts'),
        h('p', { class: 'hint' }, 'Needs the read_payloads capability. Reads with payloads are recorded in the log (one record per 1,000 entries read).')),
      h('div', { class: 'actions' }, run));

    exportForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (isBusy(run)) return;
      put(out);
      setBusy(run, true);
      bar.hidden = true;
      setState(status, 'verifying', 'Verifying the latest checkpoint…');
      try {
        let f, t;
        try {
          f = wholeNumber(from, 'First entry') ?? 0;
          t = wholeNumber(to, 'Stop before entry');
        } catch (err) {
          setState(status, 'failed', h('p', { role: 'alert' }, `${err.message}. Correct it and build again.`));
          return;
        }
        const { cp, text } = await checkLatest();
        const end = t ?? cp.size;
        if (!(f < end && end <= cp.size)) {
          setState(status, 'failed', h('p', { role: 'alert' }, `[${f}, ${end}) is not a range inside the tree of size ${cp.size}: choose a first entry below the stop entry, and a stop entry of at most ${cp.size}.`));
          return;
        }
        const n = end - f;
        if (n > MAX_EXPORT) {
          setState(status, 'failed', h('p', { role: 'alert' }, `[${f}, ${end}) is ${plural(n, 'entry', 'entries')}: this page builds exports of at most ${plural(MAX_EXPORT, 'entry', 'entries')}, in memory. `,
            `Export a smaller range (stop before entry ${f + MAX_EXPORT}, then continue from there), or use tlogctl export, which streams any size.`));
          return;
        }
        bar.hidden = false;
        bar.max = 2 * n;
        bar.value = 0;
        setState(status, 'verifying', `Reading ${plural(n, 'entry', 'entries')} [${f}, ${end}) of tree size ${cp.size}…`);
        const vkey = pinnedKey();
        const file = await buildExport({ cp, text, from: f, to: end, payloads: payloads.checked, vkey, signal: ctx.signal, progress: (d) => { bar.value = d; } });
        if (ctx.signal.aborted) return;
        setState(status, 'verifying', `Verifying the export in this browser (every entry, the range proof${payloads.checked ? ', every payload' : ''})…`);
        const r = await verifyExport(file, vkey, (d) => { bar.value = n + d; });
        if (ctx.signal.aborted) return;
        bar.value = bar.max;
        const name = exportFileName(f, end);
        setState(status, 'verified', `✓ Verified: ${plural(r.records, 'record')}, entries [${f}, ${end}) of tree size ${cp.size}${r.payloads ? `, every payload matching its commitment (${r.erased} erased)` : ', without payloads'}. Check it again any time with tlogctl verify-export.`);
        put(out, link('export-download', [file], name, `Download ${name} (${plural(file.length, 'byte')})`, 'application/jsonl'));
      } catch (err) {
        if (ctx.signal.aborted) return;
        setState(status, 'failed', errorEl(err));
      } finally {
        setBusy(run, false);
      }
    });

    // Prove.
    const index = h('input', { id: 'prove-index', name: 'prove-index', type: 'text', inputmode: 'numeric', autocomplete: 'off', value: params.get('index') || '' });
    const proveRun = h('button', { id: 'prove-run', type: 'submit', class: 'primary' }, 'Build proof');
    const proveStatus = h('div', { id: 'prove-status', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } });
    const proveOut = h('div', { id: 'prove-out' });
    const proveForm = h('form', { id: 'prove-form', class: 'filters', novalidate: true },
      field('prove-index', 'Entry index', index, 'Reads the record’s payload: needs read_payloads, and the read is recorded in the log.'),
      h('div', { class: 'actions' }, proveRun));

    proveForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (isBusy(proveRun)) return;
      put(proveOut);
      let i;
      try {
        i = wholeNumber(index, 'The entry index');
        if (i == null) throw new Error('Enter an entry index');
      } catch (err) {
        setState(proveStatus, 'failed', h('p', { role: 'alert' }, `${err.message}: the index of the record to prove (search shows it).`));
        index.focus();
        return;
      }
      setBusy(proveRun, true);
      setState(proveStatus, 'verifying', `Proving record ${i}…`);
      try {
        const { cp: latest } = await checkLatest();
        if (i >= latest.size) throw Object.assign(new Error(`entry ${i} is not in the log: it has ${plural(latest.size, 'record')}`), { code: 'OutOfRange' });
        const ents = await rpc(LOG + 'GetEntries', { start: i, count: 1, include_payloads: true });
        const en = (ents.entries || [])[0];
        if (!en || u64(en.index) !== i) throw new Error(`the server did not return entry ${i}`);
        if (en.erased) {
          setState(proveStatus, 'failed', h('p', { role: 'alert' }, `Entry ${i} was erased by entry ${en.erased_by}: its payload and salt are gone, so there is no record to prove. The entry itself is still in the log (see Erasures).`));
          return;
        }
        const entry = b64decode(en.entry);
        const salt = b64decode(en.salt);
        const payload = b64decode(en.payload);
        await verifyRecord(entry, salt, payload);
        const p = await rpc(LOG + 'GetInclusionProof', { index: i });
        const cp = await trustCheckpoint(p.checkpoint);
        if (u64(p.index) !== i || u64(p.tree_size) !== cp.size) throw new Error(`the server sent the proof of entry ${p.index} in tree ${p.tree_size}`);
        const hashes = (p.hashes || []).map(b64decode);
        await verifyInclusion(i, cp.size, await leafHash(entry), hashes, cp.root);
        const text = proofBundleText({ extra: recordExtra(entry, salt), index: i, hashes, checkpoint: p.checkpoint });
        const r = await verifyProofBundle(text, pinnedKey(), payload);
        if (!r.payloadVerified) throw new Error('the bundle does not bind the payload');
        if (ctx.signal.aborted) return;
        const names = proofFileNames(i);
        setState(proveStatus, 'verified', `✓ Verified: record ${i} is in the tree of size ${cp.size} signed with the pinned key, and commits to its ${plural(payload.length, 'byte')} payload. tlogctl verify checks the pair offline.`);
        put(proveOut, h('ul', { class: 'plain' },
          h('li', null, link('prove-download', [text], names.proof, `Download ${names.proof}`, 'text/plain')),
          h('li', null, link('prove-payload-download', [payload], names.payload, `Download ${names.payload}`, 'application/octet-stream'))));
      } catch (err) {
        if (ctx.signal.aborted) return;
        setState(proveStatus, 'failed', errorEl(err));
      } finally {
        setBusy(proveRun, false);
      }
    });

    put(root,
      h('h1', { tabindex: '-1' }, 'Export and prove'),
      h('p', { class: 'lead' }, 'The files are built and verified in this browser, then offered for download: the same bytes tlogctl export and tlogctl prove write, checkable offline with tlogctl or on the Verify page.'),
      h('section', { 'aria-labelledby': 'ex-h' }, h('h2', { id: 'ex-h' }, 'Export a range of the log'), exportForm, bar, status, out),
      h('section', { 'aria-labelledby': 'pr-h' }, h('h2', { id: 'pr-h' }, 'Prove one record'), proveForm, proveStatus, proveOut));

    return () => { for (const u of urls) URL.revokeObjectURL(u); };
  },
};
