// Unit tests of js/trust.js against a scripted server: checkpoints signed
// with a real Ed25519 key over the golden tree's roots, and consistency
// proofs from the golden vectors (tlog/testdata/vectors.json), so that an
// honest log proves what it signed and a lying one cannot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';

const vectors = JSON.parse(await readFile(new URL('../../tlog/testdata/vectors.json', import.meta.url), 'utf8'));
const roots = vectors.tree.roots; // hex, by size 0..20
const b64 = (u8) => Buffer.from(u8).toString('base64');
const hexB64 = (h) => Buffer.from(h, 'hex').toString('base64');

function storage() {
  const m = new Map();
  return {
    full: null, // a key prefix whose writes fail, as a full storage does
    getItem(k) { return m.has(k) ? m.get(k) : null; },
    setItem(k, v) {
      if (this.full && k.startsWith(this.full)) throw new Error('QuotaExceededError');
      m.set(k, String(v));
    },
    removeItem(k) { m.delete(k); },
    m,
  };
}

// A log key: signs checkpoint notes as the C2SP signed-note format says.
function logKey(origin) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const hash = createHash('sha256').update(Buffer.concat([Buffer.from(origin + '\n'), Buffer.from([1]), pub])).digest().subarray(0, 4);
  return {
    vkey: `${origin}+${hash.toString('hex')}+${b64(Buffer.concat([Buffer.from([1]), pub]))}`,
    note(size, rootB64, extra = '') {
      const body = `${origin}\n${size}\n${rootB64}\n`;
      const sig = sign(null, Buffer.from(body), privateKey);
      return `${body}\n— ${origin} ${b64(Buffer.concat([hash, sig]))}\n${extra}`;
    },
  };
}

const origin = 'trust.test.example/log';
const key = logKey(origin);
const honest = (size) => key.note(size, hexB64(roots[size]));
const forked = (size) => key.note(size, b64(Buffer.alloc(32, size)));

// server answers the dashboard API: GetCheckpoint with latest, and
// consistency proofs with proof(req) (default: the golden, honest ones).
const server = {
  latest: null,
  proof: null,
  asked: [],
  reset() { this.latest = null; this.proof = null; this.asked = []; },
};
const json = (status, body) => ({ status, ok: status < 300, statusText: '', text: async () => JSON.stringify(body) });
const unavailable = () => json(503, { code: 'Unavailable', message: 'the log is busy' });
function honestProof(req) {
  const c = vectors.consistency.find((x) => x.size1 === req.first_tree_size && x.size2 === req.second_tree_size);
  if (!c) return json(400, { code: 'OutOfRange', message: `no tree of size ${req.second_tree_size}` });
  return json(200, { hashes: c.proof.map(hexB64), second_tree_size: String(c.size2) });
}
globalThis.fetch = async (url, init) => {
  const req = JSON.parse(init.body || '{}');
  const method = url.slice(url.lastIndexOf('/') + 1);
  server.asked.push(method);
  if (method === 'GetCheckpoint') return server.latest ? json(200, { checkpoint: server.latest }) : unavailable();
  if (method === 'GetConsistencyProof') return (server.proof || honestProof)(req);
  return json(404, { code: 'NotFound', message: url });
};

// fresh loads a new instance of trust.js (its status starts over, as on a
// page load) over an empty storage, with the key pinned.
let loads = 0;
async function fresh() {
  globalThis.localStorage = storage();
  globalThis.sessionStorage = storage();
  server.reset();
  const t = await import(`../static/js/trust.js?load=${++loads}`);
  t.pinKey(key.vkey);
  return t;
}
// trusting is fresh, with the honest checkpoint of size trusted.
async function trusting(size) {
  const t = await fresh();
  server.latest = honest(size);
  await t.checkLatest();
  return t;
}
// unproven has the log sign note and fail to prove it.
async function unproven(t, note) {
  server.latest = note;
  server.proof = unavailable;
  await assert.rejects(t.checkLatest(), (e) => e.code === 'Unavailable');
}
// reload is a new page load over the same storage.
async function reload() {
  const t = await import(`../static/js/trust.js?load=${++loads}`);
  return t;
}
const trusted = () => JSON.parse(localStorage.getItem('tlogd.last.' + origin));
const kept = () => JSON.parse(localStorage.getItem('tlogd.unproven.' + origin) || 'null');
const alarm = () => JSON.parse(localStorage.getItem('tlogd.alarm.' + origin) || 'null');

test('an honest log: the first checkpoint is trusted, later ones proven', async () => {
  const t = await fresh();
  server.latest = honest(5);
  const first = await t.checkLatest();
  assert.equal(first.cp.known, false);
  assert.equal(t.trustStatus().state, 'verified');
  server.latest = honest(12);
  assert.equal((await t.checkLatest()).cp.known, true);
  assert.deepEqual([trusted().size, trusted().root], [12, hexB64(roots[12])]);
  assert.deepEqual(server.asked, ['GetCheckpoint', 'GetCheckpoint', 'GetConsistencyProof']);
  // A response at a smaller size is proven a prefix; the state stays.
  await t.trustCheckpoint(honest(7));
  assert.equal(trusted().size, 12);
  assert.equal(t.trustStatus().state, 'verified');
});

test('only the log\'s own signed note is kept, not what came with it', async () => {
  const t = await fresh();
  const junk = `— someone.else ${'A'.repeat(100000)}\n`;
  server.latest = key.note(3, hexB64(roots[3]), junk);
  await t.checkLatest();
  assert.equal(trusted().checkpoint, honest(3).replace(junk, ''));
  await unproven(t, key.note(9, hexB64(roots[9]), junk));
  assert.equal(kept().items[0].checkpoint.length < 300, true);
});

test('a rollback raises the alarm, with both signed checkpoints; it outlives a reload', async () => {
  let t = await trusting(10);
  server.latest = honest(4);
  await assert.rejects(t.checkLatest(), (e) => e.name === 'TrustError' && e.kind === 'rollback');
  assert.equal(t.trustStatus().state, 'failed');
  assert.equal(alarm().kind, 'rollback');
  assert.deepEqual([alarm().trusted.checkpoint, alarm().shown.checkpoint], [honest(10), honest(4)]);
  assert.equal(trusted().size, 10, 'the trusted state stays');
  t = await reload();
  assert.equal(t.loadStored().kind, 'rollback');
  assert.equal(t.trustStatus().state, 'failed');
  server.latest = honest(11);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'failed', 'honest answers do not clear the alarm');
  t.clearAlarm(origin);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'verified');
});

test('a log that fails its proofs is not verified, and must prove what it signed once it answers', async () => {
  const t = await trusting(2);
  await unproven(t, forked(8));
  assert.equal(t.trustStatus().state, 'unverified');
  assert.deepEqual(kept().items.map((i) => [i.size, i.failures]), [[8, 1]]);
  assert.equal(trusted().size, 2);
  // The log answers again, with an honest latest checkpoint: the fork it
  // signed cannot be proven.
  server.latest = honest(9);
  server.proof = null;
  await assert.rejects(t.checkLatest(), (e) => e.name === 'TrustError' && e.kind === 'inconsistent');
  assert.equal(t.trustStatus().state, 'failed');
  assert.equal(alarm().shown.checkpoint, forked(8));
  assert.equal(kept(), null, 'the fork is the alarm now, not unproven');
});

test('an outage, then honest proofs: verified again, nothing kept', async () => {
  const t = await trusting(2);
  await unproven(t, honest(6));
  await unproven(t, honest(7));
  assert.equal(kept().items.length, 2);
  // A page's own response cannot make it verified: only the latest can.
  server.proof = null;
  await t.trustCheckpoint(honest(5));
  assert.equal(t.trustStatus().state, 'unverified');
  server.latest = honest(8);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'verified');
  assert.equal(kept(), null);
  assert.equal(trusted().size, 8);
});

test('a kept checkpoint beside the trusted one at its size is a fork, whatever the log answers', async () => {
  const t = await trusting(0);
  await unproven(t, honest(15));
  await unproven(t, forked(20));
  // The log proves 0 → 20 (its honest root) but still not 15 → 20.
  server.proof = (req) => (req.first_tree_size === 0 ? honestProof(req) : unavailable());
  server.latest = honest(20);
  await assert.rejects(t.checkLatest(), (e) => e.name === 'TrustError' && e.kind === 'fork');
  assert.equal(alarm().kind, 'fork');
  assert.deepEqual([alarm().trusted.checkpoint, alarm().shown.checkpoint].sort(), [honest(20), forked(20)].sort());
});

test('two kept checkpoints of one size are a fork', async () => {
  const t = await trusting(0);
  await unproven(t, honest(15));
  // The log fails every proof, but it signed two roots of size 15.
  server.latest = forked(15);
  await assert.rejects(t.checkLatest(), (e) => e.name === 'TrustError' && e.kind === 'fork' && /two trees of size 15/.test(e.message));
  assert.equal(alarm().kind, 'fork');
});

test('with an alarm kept, a second fork stays kept to raise its own', async () => {
  const t = await trusting(3);
  server.latest = forked(3);
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'fork');
  await unproven(t, forked(6));
  server.proof = null;
  server.latest = honest(3);
  await t.checkLatest(); // the kept checkpoint waits while the alarm is kept
  assert.equal(t.trustStatus().state, 'failed');
  assert.equal(alarm().shown.size, 3, 'the first alarm is kept');
  assert.equal(kept().items[0].size, 6, 'the second fork is still kept');
  // A new fork while an alarm is kept fails, and is kept too.
  server.latest = forked(4);
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'inconsistent');
  assert.equal(alarm().shown.size, 3);
  assert.deepEqual(kept().items.map((i) => i.size), [6, 4]);
  server.latest = honest(3);
  t.clearAlarm(origin);
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'inconsistent');
  assert.equal(alarm().shown.checkpoint, forked(6));
  assert.deepEqual(kept().items.map((i) => i.size), [4]);
  t.clearAlarm(origin);
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'inconsistent');
  assert.equal(alarm().shown.checkpoint, forked(4));
  assert.equal(kept(), null);
});

test('checkpoints seen and not kept keep the log unproven until forgotten', async () => {
  const t = await trusting(4);
  localStorage.setItem('tlogd.unproven.' + origin, JSON.stringify({ vkey: key.vkey, items: [], dropped: 3 }));
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'unverified');
  assert.match(t.trustStatus().error.message, /checkpoints it signed, not kept \(3 checks\)/);
  t.forgetDropped(origin);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'verified');
});

test('a checkpoint that cannot be kept keeps the page unverified until reloaded', async () => {
  const t = await trusting(4);
  localStorage.full = 'tlogd.unproven.';
  server.proof = unavailable;
  server.latest = forked(9);
  await assert.rejects(t.checkLatest());
  server.proof = null;
  server.latest = honest(4);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'unverified');
  assert.match(t.trustStatus().error.message, /could not keep a checkpoint/);
});

test('a bad signature fails until reload; clearing an alarm does not clear it', async () => {
  const t = await fresh();
  server.latest = logKey(origin).note(4, hexB64(roots[4]));
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'signature');
  assert.equal(t.trustStatus().state, 'failed');
  assert.equal(alarm(), null, 'a wrong key is not evidence against the log');
  // With an alarm stored from before, the failure is still not the alarm.
  localStorage.setItem('tlogd.alarm.' + origin, JSON.stringify({ kind: 'fork', message: 'an old fork' }));
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'signature');
  assert.equal(t.trustStatus().alarm, null);
  t.clearAlarm(origin);
  assert.equal(t.trustStatus().state, 'failed');
  server.latest = honest(4);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'failed');
  // An alarm stored by another tab, then cleared: the failure is back.
  localStorage.setItem('tlogd.alarm.' + origin, JSON.stringify({ kind: 'fork', message: 'another tab saw a fork' }));
  t.loadStored();
  assert.equal(t.trustStatus().alarm.message, 'another tab saw a fork');
  t.clearAlarm(origin);
  assert.deepEqual([t.trustStatus().state, t.trustStatus().error.kind], ['failed', 'signature']);
});

test('another root at the trusted size is a fork, with when it was trusted', async () => {
  const t = await trusting(5);
  server.latest = forked(5);
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'fork');
  assert.equal(alarm().trusted.checkpoint, honest(5));
  assert.equal(alarm().trusted.seen_at, trusted().seen_at);
  assert.equal(alarm().shown.checkpoint, forked(5));
  // Shown again, it is the same evidence: once the alarm is cleared, it
  // does not come back by itself.
  await assert.rejects(t.checkLatest(), (e) => e.kind === 'fork');
  assert.equal(kept(), null);
  t.clearAlarm(origin);
  server.latest = honest(6);
  await t.checkLatest();
  assert.equal(t.trustStatus().state, 'verified');
});

test('a failed GetCheckpoint makes the page unverified', async () => {
  const t = await trusting(4);
  server.latest = null;
  await assert.rejects(t.checkLatest(), (e) => e.code === 'Unavailable');
  assert.equal(t.trustStatus().state, 'unverified');
});

test('checks run under the log\'s Web Lock, one at a time', async () => {
  const t = await fresh();
  const held = [];
  let inside = 0;
  let most = 0;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { locks: { request: async (name, fn) => { held.push(name); inside++; most = Math.max(most, inside); try { return await fn(); } finally { inside--; } } } },
  });
  try {
    server.latest = honest(10);
    await Promise.all([t.checkLatest(), t.checkLatest(), t.trustCheckpoint(honest(6))]);
  } finally {
    delete globalThis.navigator;
  }
  assert.deepEqual(held, Array(3).fill('tlogd.trust.' + origin));
  assert.equal(most, 1);
  assert.equal(trusted().size, 10);
});
