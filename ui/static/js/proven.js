// Checking what the server returns for events, against a verified
// checkpoint: a ProvenEvent's inclusion proof, its commitment, and the
// payload decoded here (the server's "event" field is never used); an
// erased event's erasure record; a bare entry's inclusion.
import { rpc, LOG } from './api.js';
import { b64decode, leafHash, verifyInclusion, verifyRecord, parseEntry } from './verify.js';
import { decodeAuditEvent } from './event.js';
import { u64 } from './format.js';

// checkProven verifies a ProvenEvent against cp (a verified checkpoint). It
// never throws: {index, time, links, erased, erasedBy, event, subjectRoles,
// ok, reason}. ok: the entry is in cp's tree and (unless erased) the
// payload is the one committed to, decoded into event.
export async function checkProven(cp, pe) {
  const e = (pe && pe.entry) || {};
  const v = { index: null, time: null, links: null, erased: false, erasedBy: null, event: null,
    subjectRoles: Number((pe && pe.subject_roles) || 0), ok: false, reason: '' };
  try {
    v.index = u64(e.index, 'entry index');
    const entry = b64decode(e.entry || '');
    const parsed = parseEntry(entry);
    v.time = parsed.time;
    v.links = parsed.links;
    const proof = (pe.inclusion_proof || []).map(b64decode);
    await verifyInclusion(v.index, cp.size, await leafHash(entry), proof, cp.root);
    if (e.erased) {
      v.erased = true;
      v.erasedBy = u64(e.erased_by, 'erased_by');
    } else {
      await verifyRecord(entry, b64decode(e.salt || ''), b64decode(e.payload || ''));
      try {
        v.event = decodeAuditEvent(b64decode(e.payload));
      } catch (err) {
        throw new Error(`the payload is not an audit event: ${err.message}`);
      }
    }
    v.ok = true;
  } catch (err) {
    v.ok = false;
    v.reason = err.message || String(err);
  }
  return v;
}

// proveEntry fetches entry index without payload and proves its leaf hash
// in cp's tree. Returns {index, time, entry (bytes)}; throws on failure.
export async function proveEntry(cp, index) {
  const [ents, proof] = await Promise.all([
    rpc(LOG + 'GetEntries', { start: index, count: 1, include_payloads: false }),
    rpc(LOG + 'GetInclusionProof', { index, tree_size: cp.size }),
  ]);
  const e = (ents.entries || [])[0];
  if (!e || u64(e.index, 'entry index') !== index) throw new Error(`the server did not return entry ${index}`);
  if (u64(proof.index, 'proof index') !== index || u64(proof.tree_size, 'proof tree_size') !== cp.size) {
    throw new Error(`the inclusion proof is for entry ${proof.index} in tree ${proof.tree_size}`);
  }
  const entry = b64decode(e.entry);
  const parsed = parseEntry(entry);
  await verifyInclusion(index, cp.size, await leafHash(entry), (proof.hashes || []).map(b64decode), cp.root);
  return { index, time: parsed.time, entry };
}

// erasedEntries reads an erasure record's list (label erased_entries:
// decimal indexes, comma separated).
export function erasedEntries(event) {
  const s = (event && event.labels && event.labels.erased_entries) || '';
  return s.split(',').filter((f) => /^[0-9]+$/.test(f)).map(Number).filter(Number.isSafeInteger);
}

// Erasures checks that erased events were erased by a real erasure record
// of cp's tree that lists them (one read of each record, with its payload).
export class Erasures {
  constructor(cp) { this.cp = cp; this.lists = new Map(); }
  async check(index, by) {
    if (!(by > index && by < this.cp.size)) {
      throw new Error(`its erasure record, entry ${by}, is not after it in the tree of size ${this.cp.size}`);
    }
    if (!this.lists.has(by)) this.lists.set(by, this.read(by));
    const listed = await this.lists.get(by);
    if (!listed.has(index)) throw new Error(`the erasure record, entry ${by}, does not list it`);
  }
  async read(by) {
    const [ents, proof] = await Promise.all([
      rpc(LOG + 'GetEntries', { start: by, count: 1, include_payloads: true }),
      rpc(LOG + 'GetInclusionProof', { index: by, tree_size: this.cp.size }),
    ]);
    const e = (ents.entries || [])[0];
    if (!e || u64(e.index) !== by || u64(proof.index) !== by) throw new Error(`the server did not return entry ${by}`);
    const v = await checkProven(this.cp, { entry: e, inclusion_proof: proof.hashes });
    if (!v.ok) throw new Error(`its erasure record, entry ${by}, does not verify: ${v.reason}`);
    if (v.erased || v.event.action !== 'ACTION_SUBJECT_ERASED') throw new Error(`entry ${by} is not an erasure record`);
    return new Set(erasedEntries(v.event));
  }
}

// pool runs fn over items, at most n at a time, in order of start.
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
