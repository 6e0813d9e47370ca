// Verify files offline, in this browser, with the pinned key: a proof
// bundle (with its payload) or an export. Nothing is sent to the server.
import { h, put, setState, timeEl } from '../dom.js';
import { pinnedKey } from '../trust.js';
import { verifyProofBundle, verifyRecord, verifyExport, b64encode } from '../verify.js';
import { plural, clean } from '../format.js';

const PROOF_HEADER = 'c2sp.org/tlog-proof@v1\n';

// classify sorts dropped files: {bundle, payload, exportFile, unknown}.
export function classify(files) {
  const out = { bundle: null, payload: null, exportFile: null, unknown: [] };
  for (const f of files) {
    if (f.text.startsWith(PROOF_HEADER)) out.bundle ??= f;
    else if (f.text.startsWith('{') && f.text.slice(0, 200).includes('"tlogd-export/v1"')) out.exportFile ??= f;
    else out.unknown.push(f);
  }
  if (out.bundle) {
    const base = out.bundle.name.replace(/\.tlog-proof$/, '');
    out.payload = out.unknown.find((f) => f.name === base + '.payload') || out.unknown.find((f) => f.name.endsWith('.payload')) ||
      (out.unknown.length === 1 ? out.unknown[0] : null);
    out.unknown = out.unknown.filter((f) => f !== out.payload);
  }
  return out;
}

const row = (k, ...v) => [h('dt', null, k), h('dd', null, ...v)];

export default {
  title: 'Verify files',
  render(root, params, ctx) {
    const input = h('input', { id: 'verify-file', name: 'verify-file', type: 'file', multiple: true, class: 'visually-hidden', 'aria-describedby': 'dropzone-hint' });
    const zone = h('label', { id: 'dropzone', for: 'verify-file', class: 'dropzone' },
      input,
      h('span', { class: 'big' }, 'Choose or drop files to verify'),
      h('span', { id: 'dropzone-hint', class: 'hint' }, 'A .tlog-proof bundle with its .payload, or a tlogd-export/v1 file (.jsonl). Press Enter or Space to choose files.'));
    const progress = h('progress', { id: 'verify-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Verification progress' });
    const result = h('div', { id: 'verify-result', class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'idle' } },
      'No file checked yet.');

    async function check(fileList) {
      const key = pinnedKey();
      setState(result, 'verifying', 'Reading the files…');
      progress.hidden = true;
      try {
        const files = await Promise.all([...fileList].map(async (f) => {
          const bytes = new Uint8Array(await f.arrayBuffer());
          return { name: f.name, bytes, text: new TextDecoder().decode(bytes) };
        }));
        const c = classify(files);
        if (c.bundle) {
          const r = await verifyProofBundle(c.bundle.text, key);
          if (ctx.signal.aborted) return;
          if (c.payload) {
            // The bundle verifies: a payload that does not match is another
            // file than the record's, or an altered one.
            try {
              await verifyRecord(r.entryBytes, r.salt, c.payload.bytes);
              r.payloadVerified = true;
            } catch (e) {
              if (!/commitment/.test(e.message)) throw e; // the bundle's salt, not the payload
              setState(result, 'failed', h('p', { role: 'alert' }, h('strong', null, '✗ Payload does NOT match: '),
                `${c.payload.name} does not match the commitment in the entry of ${c.bundle.name}: it is the wrong file for record ${r.index}, or it was altered. `,
                `The bundle itself verifies: record ${r.index} is in ${r.checkpoint.origin}’s tree of size ${r.checkpoint.size}, signed with the pinned key.`));
              return;
            }
          }
          setState(result, 'verified', h('p', null, h('strong', null, '✓ Verified: '),
            `record ${r.index} is in ${r.checkpoint.origin}’s tree of size ${r.checkpoint.size}, signed with the pinned key.`),
          h('dl', { class: 'facts' },
            row('File', c.bundle.name),
            row('Index', String(r.index)),
            row('Logged', timeEl(r.entry.time)),
            row('Checkpoint', `${r.checkpoint.origin}, size ${r.checkpoint.size}`),
            row('Root (base64)', h('code', null, b64encode(r.checkpoint.root))),
            row('Payload', r.payloadVerified
              ? `${c.payload.name} (${plural(c.payload.bytes.length, 'byte')}): the record commits to it`
              : 'not checked: add the .payload file beside the bundle to check it')),
          c.unknown.length ? h('p', { class: 'hint' }, `Not used: ${c.unknown.map((f) => f.name).join(', ')}.`) : null);
        } else if (c.exportFile) {
          let total = 0;
          try { const hd = JSON.parse(c.exportFile.text.slice(0, c.exportFile.text.indexOf('\n'))); total = hd.to - hd.from; } catch { /* verifyExport says */ }
          progress.hidden = false;
          progress.max = Math.max(1, total);
          progress.value = 0;
          setState(result, 'verifying', `Verifying ${c.exportFile.name}…`);
          const r = await verifyExport(c.exportFile.text, key, (done) => { progress.value = done; });
          if (ctx.signal.aborted) return;
          progress.value = progress.max;
          setState(result, 'verified', h('p', null, h('strong', null, '✓ Verified: '),
            `${plural(r.records, 'record')} are entries [${r.from}, ${r.to}) of ${r.checkpoint.origin}’s tree of size ${r.checkpoint.size}, signed with the pinned key`,
            r.payloads ? ', every payload matching its entry’s commitment.' : ' (an export without payloads).'),
          h('dl', { class: 'facts' },
            row('File', c.exportFile.name),
            row('Range', `[${r.from}, ${r.to})`),
            row('Records', String(r.records)),
            row('Erased', r.payloads ? String(r.erased) : 'not applicable (no payloads)'),
            row('Logged', timeEl(r.first), ' to ', timeEl(r.last)),
            row('Checkpoint', `${r.checkpoint.origin}, size ${r.checkpoint.size}`),
            row('Root (base64)', h('code', null, b64encode(r.checkpoint.root)))));
        } else {
          setState(result, 'failed', h('p', { role: 'alert' }, '✗ Not a file this page checks: choose a .tlog-proof bundle (with its .payload) or a tlogd-export/v1 export.'));
        }
      } catch (e) {
        if (ctx.signal.aborted) return;
        setState(result, 'failed', h('p', { role: 'alert' }, h('strong', null, '✗ Verification FAILED: '), clean(e.message),
          '. The file is not what the log signed with the pinned key: it was changed, or it is from another log.'));
      } finally {
        input.value = '';
      }
    }

    input.addEventListener('change', () => { if (input.files.length) check(input.files); });
    zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      if (e.dataTransfer && e.dataTransfer.files.length) check(e.dataTransfer.files);
    });

    put(root,
      h('h1', { tabindex: '-1' }, 'Verify files'),
      h('p', { class: 'lead' }, 'Check a proof bundle or an export entirely in this browser, with the pinned key and no network: the same checks as tlogctl verify and tlogctl verify-export.'),
      zone, progress,
      h('section', { 'aria-labelledby': 'vr-h' }, h('h2', { id: 'vr-h' }, 'Result'), result),
      h('p', { class: 'hint' }, 'Pinned key: ', h('code', null, pinnedKey() || 'none')));
  },
};
