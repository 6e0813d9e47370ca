// verify.js checks tlogd's artifacts in the browser, offline, with WebCrypto
// only: RFC 6962 inclusion, consistency and range proofs, entries and their
// commitments, C2SP signed-note checkpoints (Ed25519) and cosignatures
// (cosignature/v1), C2SP tlog-proof bundles, tlogd-export/v1 files and the
// back-link chain of a timeline. It mirrors the Go code check for check
// (package tlog, client.VerifyExport, the timeline checks of client/events.go
// and golang.org/x/mod/sumdb/note); tlog/testdata/vectors.json, generated
// and checked by the Go tests, holds the known answers both must agree on.
//
// Indexes and sizes are Numbers (safe integers); hashes are 32-byte
// Uint8Arrays. Every failure throws a VerifyError whose message names what
// failed.

/** VerifyError is thrown for anything that does not verify or parse. */
export class VerifyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'VerifyError';
  }
}

function fail(message) {
  throw new VerifyError(message);
}

// within runs f, prefixing the message of a VerifyError it throws (or
// rejects with) by what.
function within(what, f) {
  const rethrow = (e) => {
    throw e instanceof VerifyError ? new VerifyError(what + e.message) : e;
  };
  try {
    const r = f();
    return r instanceof Promise ? r.catch(rethrow) : r;
  } catch (e) {
    return rethrow(e);
  }
}

const HASH_SIZE = 32;
const SALT_SIZE = 16;
const ENTRY_SIZE = 1 + 8 + HASH_SIZE;
const MAX_LINKS = 2;
const MAX_U64 = 2n ** 64n - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextEncoder();
const q = (s) => JSON.stringify(s);
const hex8 = (n) => n.toString(16).padStart(8, '0');

function checkCount(what, v) {
  if (!Number.isSafeInteger(v) || v < 0) fail(`${what} must be an integer from 0 to 2^53-1, got ${v}`);
}

function checkBytes(what, b) {
  if (!(b instanceof Uint8Array)) fail(`${what} must be a Uint8Array, got ${b === null ? 'null' : typeof b}`);
}

function checkHash(what, h) {
  checkBytes(what, h);
  if (h.length !== HASH_SIZE) fail(`${what} must be ${HASH_SIZE} bytes, got ${h.length}`);
}

function checkHashes(what, list) {
  if (!Array.isArray(list)) fail(`${what} must be an array of hashes`);
  list.forEach((h, i) => checkHash(`${what}: hash ${i}`, h));
}

// ---- Bytes ----

/** hex returns the bytes in lowercase hex. */
export function hex(u8) {
  return Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** equalBytes reports whether a and b hold the same bytes. */
export function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUE = new Uint8Array(128);
for (let i = 0; i < B64.length; i++) B64_VALUE[B64.charCodeAt(i)] = i;
const B64_SYNTAX = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// decodeBase64 decodes standard base64 with padding as Go's
// base64.StdEncoding does: strict also refuses non-zero padding bits (Go's
// Strict()); crlf ignores '\r' and '\n', which Go always skips.
function decodeBase64(s, what, { strict = true, crlf = false } = {}) {
  if (crlf) s = s.replace(/[\r\n]/g, '');
  if (!B64_SYNTAX.test(s)) fail(`${what} is not standard base64`);
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let bits = 0;
  let n = 0;
  let j = 0;
  for (let i = 0; i < s.length - pad; i++) {
    bits = ((bits << 6) | B64_VALUE[s.charCodeAt(i)]) & 0x3fff;
    n += 6;
    if (n >= 8) {
      n -= 8;
      out[j++] = (bits >> n) & 0xff;
    }
  }
  if (strict && (bits & ((1 << n) - 1)) !== 0) fail(`${what} is not canonical base64 (its padding bits are not zero)`);
  return out;
}

// maybeBase64 is decodeBase64 returning null instead of throwing.
function maybeBase64(s, options) {
  try {
    return decodeBase64(s, '', options);
  } catch {
    return null;
  }
}

/** b64decode decodes strict standard base64 with padding. */
export function b64decode(str) {
  if (typeof str !== 'string') fail('base64 text must be a string');
  return decodeBase64(str, 'the text');
}

/** b64encode returns the bytes in standard base64 with padding. */
export function b64encode(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i += 3) {
    const k = Math.min(3, u8.length - i);
    const n = (u8[i] << 16) | ((k > 1 ? u8[i + 1] : 0) << 8) | (k > 2 ? u8[i + 2] : 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + (k > 1 ? B64[(n >> 6) & 63] : '=') + (k > 2 ? B64[n & 63] : '=');
  }
  return s;
}

// ---- Hashing (RFC 6962 §2.1) ----

/** sha256 returns SHA-256 of the concatenated parts. */
export async function sha256(...parts) {
  parts.forEach((p, i) => checkBytes(`sha256 part ${i}`, p));
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', concat(parts)));
}

/** leafHash returns the RFC 6962 leaf hash SHA-256(0x00 || entry). */
export function leafHash(entryBytes) {
  checkBytes('entry', entryBytes);
  return sha256(Uint8Array.of(0), entryBytes);
}

/** nodeHash returns the RFC 6962 interior node hash SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(Uint8Array.of(1), left, right);
}

const emptyRoot = () => sha256();

// Bit arithmetic on safe integers, which can exceed 32 bits.
const shiftRight = (x, l) => Math.floor(x / 2 ** l);
const bitAt = (x, l) => shiftRight(x, l) % 2;
const bitLen = (x) => (x === 0 ? 0 : x.toString(2).length);
const onesCount = (x) => x.toString(2).replaceAll('0', '').length;
const trailingZeros = (x) => x.toString(2).length - 1 - x.toString(2).lastIndexOf('1');

// innerProofSize is where the paths to leaves index and size-1 diverge:
// the proof's hashes below it are siblings on the path, those above it lie
// on the tree's left border.
const innerProofSize = (index, size) => bitLen(Number(BigInt(index) ^ BigInt(size - 1)));

async function chainInner(seed, proof, index) {
  for (let i = 0; i < proof.length; i++) {
    seed = bitAt(index, i) === 0 ? await nodeHash(seed, proof[i]) : await nodeHash(proof[i], seed);
  }
  return seed;
}

// chainInnerRight is chainInner over the siblings left of the path only:
// the hash of the same subtree in the earlier, smaller tree.
async function chainInnerRight(seed, proof, index) {
  for (let i = 0; i < proof.length; i++) {
    if (bitAt(index, i) === 1) seed = await nodeHash(proof[i], seed);
  }
  return seed;
}

async function chainBorderRight(seed, proof) {
  for (const h of proof) seed = await nodeHash(h, seed);
  return seed;
}

/**
 * verifyInclusion checks that leaf (a leaf hash) is entry index of the tree
 * of the given size and root (RFC 9162 §2.1.3.2).
 */
export async function verifyInclusion(index, size, leaf, proof, root) {
  checkCount('entry index', index);
  checkCount('tree size', size);
  if (index >= size) fail(`entry ${index} is not below tree size ${size}`);
  const what = `inclusion proof of entry ${index} in tree ${size}`;
  checkHash('leaf hash', leaf);
  checkHash('root', root);
  checkHashes(what, proof);
  const inner = innerProofSize(index, size);
  const want = inner + onesCount(shiftRight(index, inner));
  if (proof.length !== want) fail(`${what} has ${proof.length} hashes, want ${want}`);
  const got = await chainBorderRight(await chainInner(leaf, proof.slice(0, inner), index), proof.slice(inner));
  if (!equalBytes(got, root)) fail(`${what} does not lead to the root ${b64encode(root)} (it leads to ${b64encode(got)})`);
}

/**
 * verifyConsistency checks that the tree of size1 and root1 is a prefix of
 * the tree of size2 and root2 (RFC 9162 §2.1.4.2). Every tree extends the
 * empty tree, whose root is SHA-256(""), with an empty proof; between equal
 * sizes the proof is empty and the roots equal.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  checkCount('first tree size', size1);
  checkCount('second tree size', size2);
  checkHash('first root', root1);
  checkHash('second root', root2);
  const what = `consistency proof from tree ${size1} to tree ${size2}`;
  checkHashes(what, proof);
  if (size1 > size2) fail(`first tree size ${size1} exceeds second tree size ${size2}`);
  if (size1 === 0) {
    if (proof.length !== 0) fail(`${what} must be empty (every tree extends the empty tree), got ${proof.length} hashes`);
    const empty = await emptyRoot();
    if (!equalBytes(root1, empty) || (size2 === 0 && !equalBytes(root2, empty))) {
      fail(`the root of the empty tree must be SHA-256("") ${b64encode(empty)}`);
    }
    return;
  }
  if (size1 === size2) {
    if (proof.length !== 0) fail(`${what} must be empty between equal sizes, got ${proof.length} hashes`);
    if (!equalBytes(root1, root2)) fail(`two trees of size ${size1} have different roots ${b64encode(root1)} and ${b64encode(root2)}`);
    return;
  }
  if (proof.length === 0) fail(`${what} is empty`);
  // The proof is the inclusion proof of leaf size1-1 in tree size2 from
  // level shift up, where the largest perfect subtree ending at size1 has
  // its root: the proof's first hash, unless that subtree is the whole of
  // tree size1.
  const shift = trailingZeros(size1);
  const inner = innerProofSize(size1 - 1, size2) - shift;
  const border = onesCount(shiftRight(size1 - 1, inner + shift));
  const start = size1 === 2 ** shift ? 0 : 1;
  const seed = start === 0 ? root1 : proof[0];
  if (proof.length !== start + inner + border) fail(`${what} has ${proof.length} hashes, want ${start + inner + border}`);
  const path = proof.slice(start, start + inner);
  const left = proof.slice(start + inner);
  const mask = shiftRight(size1 - 1, shift);
  const got1 = await chainBorderRight(await chainInnerRight(seed, path, mask), left);
  if (!equalBytes(got1, root1)) fail(`${what} does not lead to the first root ${b64encode(root1)} (it leads to ${b64encode(got1)})`);
  const got2 = await chainBorderRight(await chainInner(seed, path, mask), left);
  if (!equalBytes(got2, root2)) fail(`${what} does not lead to the second root ${b64encode(root2)} (it leads to ${b64encode(got2)})`);
}

// CompactRange is the right edge of a tree: the roots of the perfect
// subtrees that cover [0, size), largest first (tlog.Tree).
class CompactRange {
  constructor(size, hashes) {
    if (hashes.length !== onesCount(size)) fail(`restore tree of size ${size}: got ${hashes.length} hashes, want ${onesCount(size)}`);
    this.size = size;
    this.hashes = hashes.slice();
  }

  async append(leaf) {
    let h = leaf;
    for (let n = this.size; n % 2 === 1; n = (n - 1) / 2) h = await nodeHash(this.hashes.pop(), h);
    this.hashes.push(h);
    this.size++;
  }

  async root() {
    if (this.hashes.length === 0) return emptyRoot();
    let h = this.hashes.at(-1);
    for (let i = this.hashes.length - 2; i >= 0; i--) h = await nodeHash(this.hashes[i], h);
    return h;
  }
}

/** treeRoot returns the RFC 6962 root of the leaf hashes; SHA-256("") for none. */
export async function treeRoot(leaves) {
  checkHashes('leaves', leaves);
  const t = new CompactRange(0, []);
  for (const l of leaves) await t.append(l);
  return t.root();
}

// leftSiblings returns the hashes of a verified inclusion proof of leaf
// index that lie left of its path: the compact range of [0, index),
// largest first.
function leftSiblings(index, size, proof) {
  const inner = innerProofSize(index, size);
  const left = [];
  for (let l = 0; l < inner && l < proof.length; l++) {
    if (bitAt(index, l) === 1) left.push(proof[l]);
  }
  left.push(...proof.slice(inner)); // the left border
  return left.reverse();
}

/**
 * verifyRange checks that leaves (leaf hashes) are the consecutive leaves
 * from index start of the tree of the given size and root, with the
 * inclusion proofs of the first and the last of them (tlog.VerifyRange).
 */
export async function verifyRange(start, leaves, size, firstProof, lastProof, root) {
  checkCount('range start', start);
  checkCount('tree size', size);
  checkHashes('range leaves', leaves);
  if (leaves.length === 0) fail('empty range');
  const end = start + leaves.length;
  if (!Number.isSafeInteger(end) || end > size) fail(`range [${start}, ${end}) is not inside a tree of size ${size}`);
  await within('first leaf of the range: ', () => verifyInclusion(start, size, leaves[0], firstProof, root));
  await within('last leaf of the range: ', () => verifyInclusion(end - 1, size, leaves.at(-1), lastProof, root));
  if (leaves.length === 1) return;
  const t = new CompactRange(start, leftSiblings(start, size, firstProof));
  for (const l of leaves.slice(0, -1)) await t.append(l);
  const want = leftSiblings(end - 1, size, lastProof);
  if (t.hashes.length !== want.length || !t.hashes.every((h, i) => equalBytes(h, want[i]))) {
    fail(`leaves ${start} to ${end - 1} are not the tree's`);
  }
}

// ---- Entries and records ----

/** NO_LINK is the back-link of a subject's first event (2^64-1 in the entry). */
export const NO_LINK = null;

/**
 * parseEntry decodes an entry (tlog.ParseEntry): version 1 (a record) or 2
 * (an audit event, with 1 or 2 back-links). It returns {version, time (Unix
 * ms), commitment, links}: links is null for version 1, and a link of
 * 2^64-1 is NO_LINK. A time or link beyond 2^53-1 throws.
 */
export function parseEntry(bytes) {
  checkBytes('entry', bytes);
  const bad = (why) => fail(`malformed entry: ${why}`);
  if (bytes.length === 0) bad('empty');
  const version = bytes[0];
  let n = 0;
  if (version === 1) {
    if (bytes.length !== ENTRY_SIZE) bad(`version 1 entry has ${bytes.length} bytes, want ${ENTRY_SIZE}`);
  } else if (version === 2) {
    if (bytes.length < ENTRY_SIZE + 1) bad(`version 2 entry has ${bytes.length} bytes`);
    n = bytes[ENTRY_SIZE];
    if (n === 0 || n > MAX_LINKS || bytes.length !== ENTRY_SIZE + 1 + 8 * n) bad(`version 2 entry of ${bytes.length} bytes with ${n} links`);
  } else {
    bad(`unknown version 0x${version.toString(16).padStart(2, '0')}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const time = dv.getBigUint64(1);
  if (time > MAX_SAFE) fail(`entry time ${time} ms is beyond 2^53-1`);
  const links = version === 1 ? null : [];
  for (let i = 0; i < n; i++) {
    const l = dv.getBigUint64(ENTRY_SIZE + 1 + 8 * i);
    if (l !== MAX_U64 && l > MAX_SAFE) fail(`entry link ${i} is ${l}, beyond 2^53-1`);
    links.push(l === MAX_U64 ? NO_LINK : Number(l));
  }
  return { version, time: Number(time), commitment: bytes.slice(1 + 8, ENTRY_SIZE), links };
}

const COMMITMENT_PREFIX = utf8.encode('tlogd/record/v1\x00');

/** commitment returns SHA-256("tlogd/record/v1\x00" || salt || payload). */
export function commitment(salt, payload) {
  checkBytes('salt', salt);
  checkBytes('payload', payload);
  return sha256(COMMITMENT_PREFIX, salt, payload);
}

/** verifyRecord checks that the entry commits to payload under salt (16 bytes). */
export async function verifyRecord(entryBytes, salt, payload) {
  const e = parseEntry(entryBytes);
  checkBytes('salt', salt);
  if (salt.length !== SALT_SIZE) fail(`salt must be ${SALT_SIZE} bytes, got ${salt.length}`);
  if (!equalBytes(await commitment(salt, payload), e.commitment)) fail("payload and salt do not match the entry's commitment");
}

// ---- Signed notes (golang.org/x/mod/sumdb/note) ----

const ALG_ED25519 = 1;
const ALG_COSIGNATURE_V1 = 4;
const MAX_SIGNATURES = 100;
const SIG_PREFIX = '\u2014 ';
// Go's unicode.IsSpace (JavaScript's \s differs: it has U+FEFF, not U+0085).
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

// LONE_SURROGATE matches a UTF-16 surrogate without its pair: text that is
// not valid Unicode (String.prototype.isWellFormed, which Node 18 lacks).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const wellFormed = (s) => s.search(LONE_SURROGATE) < 0;
const validName = (name) => name !== '' && wellFormed(name) && !SPACE.test(name) && !name.includes('+');

function cut(s, sep) {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)];
}

const be32 = (b) => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;

/**
 * parseVerifierKey parses a verifier key "name+hash+base64(type || key)":
 * a note key of type 1 (Ed25519, as note.NewVerifier reads it) or a
 * cosigner key of type 4 (as tlog.NewCosignatureVerifier reads it: lower
 * case hash, canonical base64). It returns {name, keyHash, type,
 * publicKey}. It does not check that the hash matches the key (that takes
 * SHA-256, which WebCrypto only does asynchronously): openCheckpoint and
 * verifyCosignature do.
 */
export function parseVerifierKey(vkey) {
  if (typeof vkey !== 'string') fail('verifier key must be a string');
  const [name, rest] = cut(vkey, '+');
  const [hash16, key64] = cut(rest, '+');
  if (!validName(name)) fail(`verifier key name ${q(name)} must be non-empty, without spaces or '+'`);
  const what = `verifier key ${q(name)}`;
  if (!/^[0-9a-fA-F]{8}$/.test(hash16)) fail(`${what}: key hash must be 8 hex digits`);
  const key = decodeBase64(key64, `${what}: key`, { strict: false, crlf: true });
  if (key.length === 0) fail(`${what} is empty`);
  const type = key[0];
  if (type === ALG_COSIGNATURE_V1) {
    if (hash16 !== hash16.toLowerCase()) fail(`${what}: a cosigner key hash must be 8 lower-case hex digits`);
    decodeBase64(key64, `${what}: key`, { crlf: true });
  } else if (type !== ALG_ED25519) {
    fail(`${what} has unknown type ${type}; want 1 (Ed25519) or 4 (Ed25519 cosigner)`);
  }
  if (key.length !== 33) fail(`${what}: Ed25519 public key of ${key.length - 1} bytes, want 32`);
  return { name, keyHash: parseInt(hash16, 16), type, publicKey: key.slice(1) };
}

// checkKeyHash checks that a parsed key's hash is the first 4 bytes of
// SHA-256(name || "\n" || type || key).
async function checkKeyHash(k) {
  const h = await sha256(utf8.encode(k.name + '\n'), Uint8Array.of(k.type), k.publicKey);
  if (be32(h) !== k.keyHash) fail(`verifier key ${q(k.name)}: key hash ${hex8(k.keyHash)} does not match the key (${hex8(be32(h))})`);
}

const keyID = (k) => `${k.name}+${hex8(k.keyHash)}`;

async function ed25519Verify(publicKey, signature, message) {
  if (signature.length !== 64) return false;
  try {
    const key = await globalThis.crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch (e) {
    if (e?.name === 'NotSupportedError') fail('this browser cannot verify Ed25519 signatures (WebCrypto lacks Ed25519)');
    return false; // a public key that is not a curve point verifies nothing
  }
}

/**
 * parseNote splits a signed note (note.Open's syntax, without verifying):
 * the body, up to and including its final newline, and the signature lines
 * "— name base64(4-byte key hash || signature)" after the blank line. It
 * returns {body, signatures: [{name, keyHash, signature, base64}]}.
 */
export function parseNote(text) {
  if (typeof text !== 'string') fail('note must be a string');
  const bad = (why) => fail(`malformed note: ${why}`);
  if (!wellFormed(text)) bad('not valid Unicode text');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) bad(`control character U+${c.toString(16).padStart(4, '0')} at offset ${i}`);
  }
  const split = text.lastIndexOf('\n\n');
  if (split < 0) bad('no blank line between the text and the signatures');
  const body = text.slice(0, split + 1);
  const sigs = text.slice(split + 2);
  if (sigs === '') bad('no signatures');
  if (!sigs.endsWith('\n')) bad('the signatures do not end with a newline');
  const lines = sigs.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) bad(`${lines.length} signatures, at most ${MAX_SIGNATURES}`);
  const signatures = lines.map((line, i) => {
    const what = `signature line ${i + 1}`;
    if (!line.startsWith(SIG_PREFIX)) bad(`${what} does not start with ${q(SIG_PREFIX)}`);
    const [name, base64] = cut(line.slice(SIG_PREFIX.length), ' ');
    if (!validName(name)) bad(`${what}: key name ${q(name)} must be non-empty, without spaces or '+'`);
    if (base64 === '') bad(`${what} has no signature`);
    const raw = within(`malformed note: ${what}: `, () => decodeBase64(base64, 'the signature', { strict: false }));
    if (raw.length < 5) bad(`${what}: signature of ${raw.length} bytes`);
    return { name, keyHash: be32(raw), signature: raw.slice(4), base64 };
  });
  return { body, signatures };
}

// ---- Checkpoints (C2SP tlog-checkpoint) ----

// parseCheckpoint parses a checkpoint body strictly (tlog.ParseCheckpoint):
// an origin without control characters, a canonical decimal size, a
// canonical base64 root of 32 bytes, and no extension lines.
function parseCheckpoint(body) {
  const bad = (why) => fail(`malformed checkpoint: ${why}`);
  if (!body.endsWith('\n')) bad('body must end with a newline');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) bad(`want 3 lines, got ${lines.length}`);
  if (lines.length > 3) bad('unexpected extension lines');
  const [origin, size, root] = lines;
  if (origin === '') bad('empty origin');
  if (/[\u0000-\u001f\u007f]/.test(origin)) bad('control character in origin');
  const n = parseDecimal(size, () => bad(`size ${q(size)} is not a canonical decimal`));
  if (n > MAX_SAFE) bad(`size ${n} is beyond 2^53-1`);
  const h = maybeBase64(root);
  if (h?.length !== HASH_SIZE) bad('root must be 32 bytes in canonical base64');
  return { origin, size: Number(n), root: h };
}

// parseDecimal parses a uint64 in canonical decimal: no sign, no leading
// zeros. It calls onError for anything else.
function parseDecimal(s, onError) {
  if (!/^(0|[1-9][0-9]*)$/.test(s) || BigInt(s) > MAX_U64) onError();
  return BigInt(s);
}

/**
 * openCheckpoint verifies a signed checkpoint against the log's verifier
 * key (tlog.OpenCheckpoint): the note must carry a valid Ed25519 signature
 * by that key, and no invalid one; its body must be a strict C2SP
 * checkpoint whose origin is the key's name. Other keys' signature lines
 * are listed, unverified, in cosignatures. It returns {origin, size, root,
 * text, own (the note with the key's signature line only: what to keep
 * as the log's word), cosignatures: [{name, keyHash}]}.
 */
export async function openCheckpoint(text, vkey) {
  const k = within('verifier key: ', () => parseVerifierKey(vkey));
  if (k.type !== ALG_ED25519) fail(`verifier key ${q(k.name)} is not a log key: type ${k.type}, want 1 (Ed25519)`);
  await checkKeyHash(k);
  const note = parseNote(text);
  const msg = utf8.encode(note.body);
  const cosignatures = [];
  const listed = new Set();
  let own = null;
  for (const s of note.signatures) {
    if (s.name !== k.name || s.keyHash !== k.keyHash) {
      const line = `${s.name} ${s.base64}`;
      if (!listed.has(line)) cosignatures.push({ name: s.name, keyHash: s.keyHash });
      listed.add(line);
    } else if (own === null) {
      // As note.Open: only the key's first signature line counts.
      if (!(await ed25519Verify(k.publicKey, s.signature, msg))) fail(`invalid checkpoint signature for key ${keyID(k)}`);
      own = `${note.body}\n${SIG_PREFIX}${s.name} ${s.base64}\n`;
    }
  }
  if (own === null) fail(`the checkpoint is not signed by the pinned key ${keyID(k)}`);
  const cp = parseCheckpoint(note.body);
  if (cp.origin !== k.name) fail(`malformed checkpoint: origin ${q(cp.origin)} is not the key name ${q(k.name)}`);
  return { ...cp, text, own, cosignatures };
}

/**
 * verifyCosignature checks a C2SP cosignature/v1 on a checkpoint note by
 * the cosigner of cosignerVkey (type 4): a valid signature over
 * "cosignature/v1\ntime <t>\n" and the body, whose body is a strict
 * checkpoint. It returns {name, time (Unix seconds)}. It does not check
 * the log's signature: openCheckpoint does.
 */
export async function verifyCosignature(text, cosignerVkey) {
  const k = within('cosigner key: ', () => parseVerifierKey(cosignerVkey));
  if (k.type !== ALG_COSIGNATURE_V1) fail(`cosigner key ${q(k.name)} is not an Ed25519 cosigner key: type ${k.type}, want 4`);
  await checkKeyHash(k);
  const note = parseNote(text);
  let time = null;
  for (const s of note.signatures) {
    if (s.name !== k.name || s.keyHash !== k.keyHash || time !== null) continue;
    const sig = s.signature;
    const t = sig.length === 72 ? new DataView(sig.buffer, sig.byteOffset).getBigUint64(0) : 0n;
    const msg = utf8.encode(`cosignature/v1\ntime ${t}\n${note.body}`);
    if (sig.length !== 72 || !(await ed25519Verify(k.publicKey, sig.slice(8), msg))) {
      fail(`invalid cosignature for key ${keyID(k)}`);
    }
    time = t;
  }
  if (time === null) fail(`the checkpoint has no cosignature by ${keyID(k)}`);
  parseCheckpoint(note.body);
  // Go refuses times beyond 2^63-1; JavaScript numbers hold 2^53-1.
  if (time > MAX_SAFE) fail(`cosignature time ${time} is beyond 2^53-1`);
  return { name: k.name, time: Number(time) };
}

// ---- Proof bundles (C2SP tlog-proof@v1) ----

const PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

/**
 * parseProofBundle parses a C2SP tlog-proof strictly (tlog.ParseProof),
 * without verifying it: {extra (null when absent), index, hashes,
 * checkpoint (the signed note text)}.
 */
export function parseProofBundle(text) {
  if (typeof text !== 'string') fail('tlog-proof must be a string');
  const bad = (why) => fail(`malformed tlog-proof: ${why}`);
  if (!text.includes('\n\n')) bad('no blank line before the checkpoint');
  const [head, checkpoint] = cut(text, '\n\n');
  let lines = head.split('\n');
  if (lines[0] !== PROOF_HEADER) bad(`first line is not ${q(PROOF_HEADER)}`);
  lines = lines.slice(1);
  let extra = null;
  if (lines.length > 0 && lines[0].startsWith('extra ')) {
    extra = within('malformed tlog-proof: ', () => decodeBase64(lines[0].slice(6), 'extra', { crlf: true }));
    lines = lines.slice(1);
  }
  if (lines.length === 0 || !lines[0].startsWith('index ')) bad('no index line');
  const index = parseDecimal(lines[0].slice(6), () => bad(`bad index ${q(lines[0].slice(6))}`));
  if (index > MAX_SAFE) bad(`index ${index} is beyond 2^53-1`);
  const hashes = lines.slice(1).map((l, i) => {
    const h = maybeBase64(l, { crlf: true });
    if (h?.length !== HASH_SIZE) bad(`proof line ${i + 1} ${q(l)} is not a base64 hash`);
    return h;
  });
  if (hashes.length > 64) bad(`${hashes.length} proof hashes`);
  return { extra, index: Number(index), hashes, checkpoint };
}

/**
 * parseRecordExtra decodes tlogd's extra data of a bundle
 * (tlog.ParseRecordExtra): the entry's length as a minimal uvarint, the
 * entry, and a 16-byte salt. It returns {entry, salt}.
 */
export function parseRecordExtra(extra) {
  checkBytes('extra', extra);
  const bad = (why) => fail(`malformed tlog-proof: ${why}`);
  let n = 0n;
  let k = 0;
  for (;;) {
    if (k === extra.length || (k === 9 && extra[k] > 1)) bad('extra does not hold an entry');
    const b = extra[k];
    n |= BigInt(b & 0x7f) << BigInt(7 * k++);
    if (b < 0x80) break;
  }
  if (n > BigInt(extra.length - k)) bad('extra does not hold an entry');
  // One encoding per bundle: a padded length would give a record another extra.
  if (k > 1 && extra[k - 1] === 0) bad("extra's entry length is not minimally encoded");
  const entry = extra.slice(k, k + Number(n));
  const salt = extra.slice(k + Number(n));
  if (salt.length !== SALT_SIZE) bad(`extra holds a ${salt.length}-byte salt, want ${SALT_SIZE}`);
  return { entry, salt };
}

/**
 * verifyProofBundle checks a tlog-proof bundle offline, as tlogctl verify
 * does: its extra holds the entry and salt, its checkpoint is signed by the
 * log's key (openCheckpoint), the entry is at its index in that tree and,
 * when payload is given, the entry commits to it. It returns {checkpoint,
 * index, entry (parsed), entryBytes, salt, payloadVerified}.
 */
export async function verifyProofBundle(text, vkey, payload) {
  const p = parseProofBundle(text);
  if (p.extra === null) fail('the bundle has no extra data: no entry to check');
  const { entry, salt } = parseRecordExtra(p.extra);
  const checkpoint = await openCheckpoint(p.checkpoint, vkey);
  await verifyInclusion(p.index, checkpoint.size, await leafHash(entry), p.hashes, checkpoint.root);
  const payloadVerified = payload !== undefined && payload !== null;
  if (payloadVerified) await verifyRecord(entry, salt, payload);
  return { checkpoint, index: p.index, entry: parseEntry(entry), entryBytes: entry, salt, payloadVerified };
}

// ---- Exports (tlogd-export/v1, client.VerifyExport) ----

const EXPORT_FORMAT = 'tlogd-export/v1';
const MAX_LINE = 8 << 20; // bufio.Scanner's limit in VerifyExport
const BATCH = 1000; // records hashed concurrently; divides the progress step

// A JSON number, kept as its text; a JSON object, kept as its members in
// order (duplicates included).
class JSONNumber {
  constructor(text) {
    this.text = text;
  }
}
class JSONObject {
  constructor(members) {
    this.members = members;
  }
}

// JSONParser reads JSON as Go's encoding/json does.
class JSONParser {
  constructor(s) {
    this.s = s;
    this.i = 0;
  }

  error(why) {
    fail(`invalid JSON at offset ${this.i}: ${why}`);
  }

  ws() {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i])) this.i++;
  }

  match(re) {
    re.lastIndex = this.i;
    const m = re.exec(this.s);
    if (m) this.i = re.lastIndex;
    return m?.[0];
  }

  value() {
    this.ws();
    switch (this.s[this.i]) {
      case '{':
        return new JSONObject(this.list('}', () => this.member()));
      case '[':
        return this.list(']', () => this.value());
      case '"':
        return this.string();
    }
    const num = this.match(/-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y);
    if (num !== undefined) return new JSONNumber(num);
    const word = this.match(/true|false|null/y);
    if (word !== undefined) return JSON.parse(word);
    return this.error(this.i < this.s.length ? `unexpected ${q(this.s[this.i])}` : 'unexpected end');
  }

  member() {
    if (this.s[this.i] !== '"') this.error('want a string key');
    const key = this.string();
    this.ws();
    if (this.s[this.i++] !== ':') this.error("want ':' after the key");
    return [key, this.value()];
  }

  // list reads the items of an array or object after its opening bracket.
  list(close, item) {
    this.i++;
    const items = [];
    this.ws();
    if (this.s[this.i] === close) {
      this.i++;
      return items;
    }
    for (;;) {
      this.ws();
      items.push(item());
      this.ws();
      const c = this.s[this.i++];
      if (c === close) return items;
      if (c !== ',') this.error(`want ',' or '${close}'`);
    }
  }

  string() {
    const lit = this.match(/"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y);
    if (lit === undefined) this.error('invalid string');
    return JSON.parse(lit).replace(LONE_SURROGATE, '\uFFFD'); // Go turns lone surrogates into U+FFFD
  }
}

// Go's encoding/json matches a key to a field exactly, else case-
// insensitively with Unicode simple folding (ſ is s, K is k).
const foldKey = (k) => k.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\u017f/g, 'S').replace(/\u212a/g, 'K');

const HEADER_FIELDS = new Map([
  ['format', 'string'], ['origin', 'string'], ['verifier_key', 'string'], ['checkpoint', 'string'],
  ['from', 'uint64'], ['to', 'uint64'], ['payloads', 'bool'], ['first_proof', '[][]byte'], ['last_proof', '[][]byte'],
]);
const RECORD_FIELDS = new Map([
  ['index', 'uint64'], ['entry', '[]byte'], ['salt', '[]byte'], ['payload', '[]byte'], ['erased_by', '*uint64'],
]);
const ZERO = { string: '', uint64: 0n, bool: false, '[]byte': null, '[][]byte': null, '*uint64': null };

const jsonKind = (v) => (v instanceof JSONObject ? 'object' : v instanceof JSONNumber ? 'number' : Array.isArray(v) ? 'array' : typeof v);

// goValue converts a JSON value for a field of the given Go type as
// encoding/json does; null leaves a string, number or bool unchanged
// (old) and sets a slice or pointer to null.
function goValue(type, v, old, field) {
  const mismatch = () => fail(`cannot decode a JSON ${jsonKind(v)} into ${field} (Go type ${type})`);
  const uint = (bits) => {
    if (!(v instanceof JSONNumber) || !/^[0-9]+$/.test(v.text) || BigInt(v.text) >= 2n ** bits) mismatch();
    return BigInt(v.text);
  };
  if (v === null) return type === 'string' || type === 'uint64' || type === 'bool' ? old : null;
  switch (type) {
    case 'string':
      return typeof v === 'string' ? v : mismatch();
    case 'bool':
      return typeof v === 'boolean' ? v : mismatch();
    case 'uint64':
    case '*uint64':
      return uint(64n);
    case '[]byte':
      if (typeof v === 'string') return decodeBase64(v, field, { strict: false, crlf: true });
      if (!Array.isArray(v)) mismatch();
      return Uint8Array.from(v, (b, i) => (b === null ? 0 : Number(goValue('uint8', b, 0, `${field}[${i}]`))));
    case 'uint8':
      return uint(8n);
    case '[][]byte':
      if (!Array.isArray(v)) mismatch();
      return v.map((h, i) => goValue('[]byte', h, null, `${field}[${i}]`));
  }
  return mismatch();
}

// decodeJSON decodes one JSON value, an object or null, into a Go struct of
// the given fields.
function decodeJSON(line, fields) {
  const out = {};
  for (const [name, type] of fields) out[name] = ZERO[type];
  const p = new JSONParser(line);
  p.ws();
  if (p.i === line.length) fail('no JSON object (EOF)');
  const v = p.value();
  p.ws();
  // json.Decoder.More: a closing bracket or brace does not count as more.
  if (p.i < line.length && line[p.i] !== ']' && line[p.i] !== '}') fail('trailing data after the JSON object');
  if (v === null) return out;
  if (!(v instanceof JSONObject)) fail(`cannot decode a JSON ${jsonKind(v)} into an object`);
  for (const [key, val] of v.members) {
    const name = fields.has(key) ? key : [...fields.keys()].find((f) => foldKey(f) === foldKey(key));
    if (name === undefined) fail(`unknown field ${q(key)}`);
    out[name] = goValue(fields.get(name), val, out[name], name);
  }
  return out;
}

// exportLines splits text into lines as VerifyExport's bufio.Scanner does:
// at '\n', the final line unterminated or not. (The '\r' it drops before a
// '\n' is JSON whitespace here.)
function exportLines(text) {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

// decodeLine decodes line n of an export, of 8 MiB at most as for the Go
// scanner, into a Go struct as VerifyExport does (a json.Decoder refusing
// unknown fields, then no more values).
function decodeLine(line, n, fields) {
  if (line.length * 3 >= MAX_LINE && utf8.encode(line).length >= MAX_LINE) fail(`line ${n} is longer than 8 MiB`);
  return decodeJSON(line, fields);
}

function hashList(what, list) {
  return within(`export ${what} does not verify: `, () => (list ?? []).map((h) => {
    if (h === null || h.length !== HASH_SIZE) fail(`hash must be 32 bytes, got ${h === null ? 0 : h.length}`);
    return h;
  }));
}

/**
 * verifyExport checks an export file offline against the log's verifier
 * key (client.VerifyExport, as strictly): the checkpoint's signature, that
 * the records are exactly the entries [from, to) of its tree (verifyRange
 * with the header's two proofs) and, in an export with payloads, every
 * payload against its entry's commitment. onProgress, if given, is called
 * with the number of records read, every 10,000 and at the end. It returns
 * {header, checkpoint, from, to, records, erased, first, last (log times of
 * the first and last entries, Unix ms), payloads}.
 */
export async function verifyExport(text, vkey, onProgress) {
  if (typeof text !== 'string') fail('export must be a string');
  const k = within('verifier key: ', () => parseVerifierKey(vkey));
  if (k.type !== ALG_ED25519) fail(`verifier key ${q(k.name)} is not a log key: type ${k.type}, want 1 (Ed25519)`);
  await checkKeyHash(k);
  const bad = (what, why) => fail(`export ${what} does not verify: ${why}`);
  const lines = exportLines(text);
  if (lines.length === 0) bad('header', 'the file is empty');
  const h = within('export header does not verify: ', () => decodeLine(lines[0], 1, HEADER_FIELDS));
  if (h.format !== EXPORT_FORMAT) bad('header', `format ${q(h.format)}, want ${q(EXPORT_FORMAT)}`);
  const checkpoint = await within('export checkpoint does not verify: ', () => openCheckpoint(h.checkpoint, vkey));
  if (h.origin !== checkpoint.origin) bad('header', `origin ${q(h.origin)} is not the signed checkpoint's ${q(checkpoint.origin)}`);
  if (h.from >= h.to || h.to > BigInt(checkpoint.size)) bad('header', `range [${h.from}, ${h.to}) is not inside the tree of size ${checkpoint.size}`);
  const from = Number(h.from);
  const to = Number(h.to);
  const first = hashList('first_proof', h.first_proof);
  const last = hashList('last_proof', h.last_proof);
  // Records are read in order; the hashing of up to BATCH of them runs
  // concurrently, and the first failure in record order is reported.
  const leaves = [];
  let batch = [];
  const flush = async () => {
    const done = await Promise.allSettled(batch);
    batch = [];
    for (const r of done) {
      if (r.status === 'rejected') throw r.reason;
      leaves.push(r.value);
    }
    if (onProgress && done.length > 0 && leaves.length % 10000 === 0) onProgress(leaves.length);
  };
  let read = 0;
  let erased = 0;
  let firstTime = 0;
  let lastTime = 0;
  for (const line of lines.slice(1)) {
    const i = from + read++;
    const what = `record ${i}`;
    let check = null;
    try {
      if (i === to) bad('records', `more records than the header's range [${from}, ${to})`);
      const rec = within(`export ${what} does not verify: `, () => decodeLine(line, read + 1, RECORD_FIELDS));
      if (rec.index !== BigInt(i)) bad(what, `the line holds index ${rec.index}`);
      const e = within(`export ${what} does not verify: `, () => parseEntry(rec.entry ?? new Uint8Array()));
      if (h.payloads && rec.erased_by !== null) {
        if (rec.salt !== null || rec.payload !== null) bad(what, 'an erased record with a salt or payload');
        erased++;
      } else if (h.payloads) {
        check = () => within(`export ${what} commitment does not verify: `,
          () => verifyRecord(rec.entry, rec.salt ?? new Uint8Array(), rec.payload ?? new Uint8Array()));
      } else if (rec.salt !== null || rec.payload !== null || rec.erased_by !== null) {
        bad(what, 'a salt, payload or erasure in an export without payloads');
      }
      if (i === from) firstTime = e.time;
      lastTime = e.time;
      batch.push((async () => {
        await check?.();
        return leafHash(rec.entry);
      })());
    } catch (e) {
      await flush(); // an earlier record's failure comes first
      throw e;
    }
    if (batch.length === BATCH) await flush();
  }
  await flush();
  if (from + leaves.length !== to) bad('records', `the records stop at ${from + leaves.length}, the header's range is [${from}, ${to})`);
  onProgress?.(leaves.length);
  await within(`export records ${from} to ${to - 1} do not verify: `, () => verifyRange(from, leaves, checkpoint.size, first, last, checkpoint.root));
  const header = { ...h, from, to };
  return { header, checkpoint, from, to, records: leaves.length, erased, first: firstTime, last: lastTime, payloads: h.payloads };
}

// ---- Timelines ----

/**
 * checkChain checks a subject's timeline, as returned, for a broken chain
 * of back-links (the chain checks of client.Timeline): items, in returned
 * order, are {index, links (the parsed entry's), event (decoded, or null
 * when erased), subjectRoles (1 actor, 2 target, 3 both; used for erased
 * events only)}. Indexes must increase; an event's links for the subject
 * (the actor's is links[0], the target's links[1]) must each be the
 * previous returned index, NO_LINK for the first. It returns {ok,
 * breakIndex (the entry index of the first event that breaks the chain,
 * else null), reason}. It does not check proofs, nor that the timeline
 * ends at the log's latest event for the subject.
 */
export function checkChain(subject, tenant, items) {
  let prev = NO_LINK;
  const broken = (index, reason) => ({ ok: false, breakIndex: index, reason });
  for (const it of items) {
    const { index } = it;
    checkCount('timeline entry index', index);
    if (prev !== NO_LINK && index <= prev) return broken(index, `timeline event at entry ${index} is not after the previous event, entry ${prev}`);
    let actor = false;
    let target = false;
    if (it.event === null || it.event === undefined) {
      // An erased event no longer says; the log's word is taken, and the
      // chain still has to link up.
      actor = (it.subjectRoles & 1) !== 0;
      target = (it.subjectRoles & 2) !== 0;
    } else if (it.event.tenant === tenant) {
      actor = it.event.actor?.id === subject;
      target = it.event.target?.id === subject;
    }
    const links = [];
    if (it.links?.length === MAX_LINKS) {
      if (actor) links.push(it.links[0]);
      if (target) links.push(it.links[1]);
    }
    if (links.length === 0) return broken(index, `the event at entry ${index} does not name ${q(subject)} in tenant ${q(tenant)}`);
    for (const l of links) {
      if (l === prev) continue;
      if (prev === NO_LINK) return broken(index, `entry ${index} links back to entry ${l}, but no earlier event was returned: an event of ${q(subject)} is missing`);
      if (l === NO_LINK) return broken(index, `entry ${index} is ${q(subject)}'s first event, but entry ${prev} was returned before it`);
      return broken(index, `entry ${index} links back to entry ${l}, but the previous event returned is entry ${prev}: an event of ${q(subject)} is missing`);
    }
    prev = index;
  }
  return { ok: true, breakIndex: null, reason: '' };
}
