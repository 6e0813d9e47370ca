// Builders of the files tlogctl writes, byte for byte: the export
// (tlogd-export/v1, client/export.go) and the proof bundle
// (C2SP tlog-proof@v1, tlog.Proof.Marshal with tlog.RecordExtra).
// Pure functions: strings in, strings out (the files are ASCII or UTF-8).

export const EXPORT_FORMAT = 'tlogd-export/v1';
const PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

// b64 is standard base64 with padding (Go's base64.StdEncoding).
export function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

const shortEscapes = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

// goJSONString quotes s as Go's encoding/json does: \" \\ \n \r \t \b \f,
// other control characters as \u00XX, HTML-sensitive <, >, & and the line
// separators U+2028, U+2029 as \u escapes, everything else as it is. A
// lone surrogate (invalid UTF-8 once encoded) becomes \ufffd, as Go writes
// an invalid byte.
export function goJSONString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (shortEscapes[ch]) out += shortEscapes[ch];
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += ch + s[i + 1];
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return out + '"';
}

function uint(n, what) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} ${n} is not a valid index`);
  return String(n);
}

const hashList = (hashes) => '[' + hashes.map((h) => '"' + b64(h) + '"').join(',') + ']';

// exportHeaderLine is json.Marshal(client.ExportHeader) and a newline.
// h: {origin, verifierKey, checkpoint, from, to, payloads, firstProof, lastProof}
// (proofs as arrays of Uint8Array).
export function exportHeaderLine(h) {
  return '{"format":' + goJSONString(EXPORT_FORMAT) +
    ',"origin":' + goJSONString(h.origin) +
    ',"verifier_key":' + goJSONString(h.verifierKey) +
    ',"checkpoint":' + goJSONString(h.checkpoint) +
    ',"from":' + uint(h.from, 'from') +
    ',"to":' + uint(h.to, 'to') +
    ',"payloads":' + (h.payloads ? 'true' : 'false') +
    ',"first_proof":' + hashList(h.firstProof) +
    ',"last_proof":' + hashList(h.lastProof) + '}\n';
}

// exportRecordLine is client.appendRecord: an ExportRecord line. r: {index,
// entry, salt?, payload?, erased?, erasedBy?} (bytes as Uint8Array). Empty
// byte fields are left out (omitempty); erased_by only for an erased entry.
export function exportRecordLine(r) {
  let s = '{"index":' + uint(r.index, 'index');
  for (const [name, v] of [['entry', r.entry], ['salt', r.salt], ['payload', r.payload]]) {
    if (v && v.length > 0) s += ',"' + name + '":"' + b64(v) + '"';
  }
  if (r.erased) s += ',"erased_by":' + uint(r.erasedBy, 'erased_by');
  return s + '}\n';
}

export const exportFileName = (from, to) => `tlogd-export-${from}-${to}.jsonl`;

// uvarint is encoding/binary.AppendUvarint.
export function uvarint(n) {
  uint(n, 'length');
  const out = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

// recordExtra is tlog.RecordExtra: the entry's length (uvarint), the
// entry, the salt.
export function recordExtra(entry, salt) {
  const len = uvarint(entry.length);
  const out = new Uint8Array(len.length + entry.length + salt.length);
  out.set(len, 0);
  out.set(entry, len.length);
  out.set(salt, len.length + entry.length);
  return out;
}

// proofBundleText is tlog.Proof.Marshal: the header, the extra line when
// extra is not null, the index, one base64 hash a line, a blank line, the
// checkpoint note as the log served it.
export function proofBundleText({ extra = null, index, hashes, checkpoint }) {
  let s = PROOF_HEADER + '\n';
  if (extra) s += 'extra ' + b64(extra) + '\n';
  s += 'index ' + uint(index, 'index') + '\n';
  for (const h of hashes) s += b64(h) + '\n';
  return s + '\n' + checkpoint;
}

export const proofFileNames = (index) => ({ proof: `record-${index}.tlog-proof`, payload: `record-${index}.payload` });
