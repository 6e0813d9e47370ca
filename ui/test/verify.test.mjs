// Tests of verify.js against tlog/testdata/vectors.json, the known answers
// the Go code generates and checks (tlog/vectors_test.go), and of checkChain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as v from '../static/js/verify.js';

const vectors = JSON.parse(await readFile(new URL('../../tlog/testdata/vectors.json', import.meta.url), 'utf8'));
const unhex = (s) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const hashes = (list) => (list ?? []).map(unhex);
const utf8 = new TextEncoder();
const NO_LINK = 2n ** 64n - 1n;

// rejects asserts that p rejects with a VerifyError, and returns its message.
async function rejects(p, what) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof v.VerifyError, `${what}: threw ${e} instead of a VerifyError`);
    assert.notEqual(e.message, '', what);
    return e.message;
  }
  assert.fail(`${what}: accepted`);
}

test('base64 and hex', async () => {
  assert.deepEqual(v.b64decode('AQIDBA=='), Uint8Array.of(1, 2, 3, 4));
  assert.deepEqual(v.b64decode(''), new Uint8Array());
  assert.equal(v.b64encode(Uint8Array.of(1, 2, 3, 4)), 'AQIDBA==');
  assert.equal(v.b64encode(Uint8Array.of(0xfb, 0xff)), '+/8=');
  for (let n = 0; n < 40; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    assert.deepEqual(v.b64decode(v.b64encode(b)), b, `round trip of ${n} bytes`);
    assert.equal(v.b64encode(b), Buffer.from(b).toString('base64'));
  }
  for (const bad of ['AQIDBB==', 'AQIDBA', 'AQIDBA=', 'AQID BA==', 'AQIDBA==\n', 'AQ-_', 'A===', '=AAA']) {
    await rejects((async () => v.b64decode(bad))(), `b64decode(${JSON.stringify(bad)})`);
  }
  assert.equal(v.hex(Uint8Array.of(0, 15, 255)), '000fff');
  assert.ok(v.equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!v.equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!v.equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1)));
  assert.equal(v.hex(await v.sha256()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(v.hex(await v.sha256(utf8.encode('a'), utf8.encode('bc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('entries', async () => {
  assert.ok(vectors.entries.length >= 10);
  for (const e of vectors.entries) {
    const bytes = unhex(e.entry);
    assert.equal(v.hex(await v.leafHash(bytes)), e.leaf_hash, e.name);
    const links = e.links?.map(BigInt);
    const unsafe = BigInt(e.time) > BigInt(Number.MAX_SAFE_INTEGER) || Boolean(links?.some((l) => l !== NO_LINK && l > BigInt(Number.MAX_SAFE_INTEGER)));
    assert.equal(unsafe, Boolean(e.js_rejects), `${e.name}: js_rejects`);
    if (unsafe) {
      await rejects((async () => v.parseEntry(bytes))(), e.name);
      continue;
    }
    assert.deepEqual(v.parseEntry(bytes), {
      version: e.version,
      time: Number(e.time),
      commitment: unhex(e.commitment),
      links: links ? links.map((l) => (l === NO_LINK ? v.NO_LINK : Number(l))) : null,
    }, e.name);
  }
  for (const e of vectors.malformed_entries) {
    const msg = await rejects((async () => v.parseEntry(unhex(e.entry)))(), e.name);
    assert.match(msg, /^malformed entry: /, e.name);
  }
});

test('records and commitments', async () => {
  for (const r of vectors.records) {
    const [entry, salt, payload] = [unhex(r.entry), unhex(r.salt), unhex(r.payload)];
    assert.equal(v.hex(await v.commitment(salt, payload)), r.commitment, r.name);
    if (r.valid) await v.verifyRecord(entry, salt, payload);
    else await rejects(v.verifyRecord(entry, salt, payload), r.name);
  }
  assert.equal(vectors.records.filter((r) => r.valid).length, 3);
});

test('tree roots', async () => {
  const { entries, leaf_hashes: leaves, roots } = vectors.tree;
  assert.equal(roots.length, entries.length + 1);
  for (let i = 0; i < entries.length; i++) assert.equal(v.hex(await v.leafHash(unhex(entries[i]))), leaves[i], `leaf ${i}`);
  for (let n = 0; n < roots.length; n++) assert.equal(v.hex(await v.treeRoot(hashes(leaves.slice(0, n)))), roots[n], `root of ${n}`);
  assert.equal(roots[0], 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('inclusion proofs', async () => {
  assert.equal(vectors.inclusion.length, 210);
  for (const p of vectors.inclusion) {
    await v.verifyInclusion(p.index, p.size, unhex(p.leaf), hashes(p.proof), unhex(p.root));
  }
  assert.ok(vectors.bad_inclusion.length > 200);
  for (const p of vectors.bad_inclusion) {
    await rejects(v.verifyInclusion(p.index, p.size, unhex(p.leaf), hashes(p.proof), unhex(p.root)), `${p.name} (${p.index} in ${p.size})`);
  }
  const p = vectors.inclusion.find((x) => x.index === 5 && x.size === 9);
  const wrong = unhex(vectors.tree.roots[8]);
  const msg = await rejects(v.verifyInclusion(5, 9, unhex(p.leaf), hashes(p.proof), wrong), 'wrong root');
  assert.match(msg, /^inclusion proof of entry 5 in tree 9 does not lead to the root [A-Za-z0-9+/]{43}= \(it leads to [A-Za-z0-9+/]{43}=\)$/);
  assert.match(await rejects(v.verifyInclusion(5, 9, unhex(p.leaf), hashes(p.proof).slice(1), unhex(p.root)), 'short'), /has 3 hashes, want 4/);
  assert.match(await rejects(v.verifyInclusion(9, 9, unhex(p.leaf), [], unhex(p.root)), 'index = size'), /entry 9 is not below tree size 9/);
  for (const [index, size] of [[2 ** 53, 2 ** 53 + 2], [-1, 3], [1.5, 3], ['1', 3]]) {
    await rejects(v.verifyInclusion(index, size, unhex(p.leaf), [], unhex(p.root)), `indexes ${index}, ${size}`);
  }
  await rejects(v.verifyInclusion(5, 9, unhex(p.leaf), [...hashes(p.proof).slice(1), new Uint8Array(31)], unhex(p.root)), 'a 31-byte hash');
});

// The verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, on
// BigInts, as a reference for trees too large for the vectors: they return
// the roots a proof leads to, or null when its length does not fit.
async function refInclusionRoot(index, size, leaf, proof) {
  let [fn, sn, r] = [BigInt(index), BigInt(size) - 1n, leaf];
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await v.nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) [fn, sn] = [fn >> 1n, sn >> 1n];
    } else {
      r = await v.nodeHash(r, p);
    }
    [fn, sn] = [fn >> 1n, sn >> 1n];
  }
  return sn === 0n ? r : null;
}

async function refConsistencyRoots(size1, size2, proof, root1) {
  const path = (BigInt(size1) & (BigInt(size1) - 1n)) === 0n ? [root1, ...proof] : proof;
  let [fn, sn] = [BigInt(size1) - 1n, BigInt(size2) - 1n];
  while ((fn & 1n) === 1n) [fn, sn] = [fn >> 1n, sn >> 1n];
  let [fr, sr] = [path[0], path[0]];
  for (const c of path.slice(1)) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      [fr, sr] = [await v.nodeHash(c, fr), await v.nodeHash(c, sr)];
      while ((fn & 1n) === 0n && fn !== 0n) [fn, sn] = [fn >> 1n, sn >> 1n];
    } else {
      sr = await v.nodeHash(sr, c);
    }
    [fn, sn] = [fn >> 1n, sn >> 1n];
  }
  return sn === 0n ? [fr, sr] : null;
}

test('proofs in trees beyond 2^32, against RFC 9162', async () => {
  const h = (s) => v.sha256(utf8.encode(s));
  const randomHashes = (n, seed) => Promise.all(Array.from({ length: n }, (_, i) => h(`${seed} ${i}`)));
  const cases = [[2 ** 40 + 5, 2 ** 40 + 7], [2 ** 52 + 3, 2 ** 53 - 1], [0, 2 ** 53 - 1], [2 ** 53 - 2, 2 ** 53 - 1],
    [2 ** 32, 2 ** 32 + 1], [2 ** 32 - 1, 2 ** 33], [6_000_000_001, 9_000_000_000], [2 ** 45, 2 ** 46]];
  for (const [a, b] of cases) {
    const leaf = await h(`leaf ${a}`);
    let checked = false;
    for (let n = 0; n <= 54; n++) {
      const proof = await randomHashes(n, `inclusion ${a} ${b}`);
      const root = await refInclusionRoot(a, b, leaf, proof);
      if (root === null) {
        await rejects(v.verifyInclusion(a, b, leaf, proof, await h('any root')), `inclusion ${a} in ${b}, ${n} hashes`);
        continue;
      }
      await v.verifyInclusion(a, b, leaf, proof, root);
      await rejects(v.verifyInclusion(a, b, await h('another leaf'), proof, root), `inclusion ${a} in ${b}, another leaf`);
      if (a > 0) await rejects(v.verifyInclusion(a - 1, b, leaf, proof, root), `inclusion ${a - 1} in ${b}`);
      checked = true;
    }
    assert.ok(checked, `no proof length fits inclusion ${a} in ${b}`);
    if (a === 0) continue;
    checked = false;
    const root1 = await h(`root ${a}`);
    for (let n = 0; n <= 54; n++) {
      const proof = await randomHashes(n, `consistency ${a} ${b}`);
      const roots = await refConsistencyRoots(a, b, proof, root1);
      if (roots === null || (a & (a - 1)) !== 0 && n === 0) {
        await rejects(v.verifyConsistency(a, b, proof, root1, await h('any root')), `consistency ${a} to ${b}, ${n} hashes`);
        continue;
      }
      await v.verifyConsistency(a, b, proof, ...roots);
      await rejects(v.verifyConsistency(a, b, proof, roots[1], roots[0]), `consistency ${a} to ${b}, roots swapped`);
      checked = true;
    }
    assert.ok(checked, `no proof length fits consistency ${a} to ${b}`);
  }
});

test('consistency proofs', async () => {
  assert.equal(vectors.consistency.length, 231);
  for (const p of vectors.consistency) {
    await v.verifyConsistency(p.size1, p.size2, hashes(p.proof), unhex(p.root1), unhex(p.root2));
  }
  assert.ok(vectors.bad_consistency.length > 180);
  for (const p of vectors.bad_consistency) {
    await rejects(v.verifyConsistency(p.size1, p.size2, hashes(p.proof), unhex(p.root1), unhex(p.root2)), `${p.name} (${p.size1} to ${p.size2})`);
  }
  const roots = vectors.tree.roots.map(unhex);
  assert.match(await rejects(v.verifyConsistency(8, 7, [], roots[8], roots[7]), 'backwards'), /^first tree size 8 exceeds second tree size 7$/);
  assert.match(await rejects(v.verifyConsistency(0, 3, [roots[1]], roots[0], roots[3]), 'from 0'), /must be empty/);
  assert.match(await rejects(v.verifyConsistency(0, 0, [], roots[0], roots[1]), 'empty trees'), /SHA-256\(""\)/);
});

test('range proofs', async () => {
  assert.equal(vectors.ranges.filter((r) => r.valid).length, 8);
  for (const r of vectors.ranges) {
    const p = v.verifyRange(r.start, hashes(r.leaves), r.size, hashes(r.first_proof), hashes(r.last_proof), unhex(r.root));
    if (r.valid) await p;
    else await rejects(p, r.name);
  }
  const r = vectors.ranges.find((x) => x.name === 'a middle leaf replaced');
  const msg = await rejects(v.verifyRange(r.start, hashes(r.leaves), r.size, hashes(r.first_proof), hashes(r.last_proof), unhex(r.root)), r.name);
  assert.equal(msg, 'leaves 3 to 7 are not the tree\'s');
});

test('checkpoints', async (t) => {
  for (const c of vectors.checkpoints) {
    await t.test(c.name, async () => {
      const p = v.openCheckpoint(c.text, c.verifier_key ?? vectors.log_key);
      if (!c.want || c.js_rejects) {
        await rejects(p, c.name);
        return;
      }
      const { own, ...got } = await p;
      assert.deepEqual(got, {
        origin: c.want.origin,
        size: c.want.size,
        root: unhex(c.want.root),
        text: c.text,
        cosignatures: c.want.cosignatures.map((s) => ({ name: s.name, keyHash: s.key_hash })),
      });
      // own is the note with the log's signature line only: the same
      // body, one of the text's lines, and it opens alone.
      const n = v.parseNote(own);
      assert.equal(n.signatures.length, 1);
      assert.equal(n.body, v.parseNote(c.text).body);
      assert.ok(c.text.split('\n').includes(own.slice(n.body.length + 1, -1)));
      const again = await v.openCheckpoint(own, c.verifier_key ?? vectors.log_key);
      assert.equal(again.own, own);
      assert.deepEqual(again.cosignatures, []);
    });
  }
  assert.ok(vectors.checkpoints.filter((c) => !c.want).length >= 35);
});

test('signed notes', () => {
  const text = vectors.checkpoints.find((c) => c.name.startsWith('cosigned')).text;
  const n = v.parseNote(text);
  assert.equal(n.body, text.slice(0, text.indexOf('\n\n') + 1));
  assert.deepEqual(n.signatures.map((s) => s.name), ['vectors.tlogd.example/log', 'witness.tlogd.example/w1', 'witness.tlogd.example/w2']);
  assert.equal(n.signatures[0].signature.length, 64);
  assert.equal(n.signatures[1].signature.length, 72);
  assert.equal(n.signatures[0].keyHash, v.parseVerifierKey(vectors.log_key).keyHash);
  assert.throws(() => v.parseNote('a\n\n— k AAAAAA==\n'), /signature of 4 bytes/);
  assert.throws(() => v.parseNote('a\n\n— k\tAAAAAAA=\n'), /control character U\+0009 at offset 6/);
  assert.throws(() => v.parseNote('a\n\n— k\u00a0x AAAAAAA=\n'), /key name/);
  assert.throws(() => v.parseNote('\ud800\n\n— k AAAAAAA=\n'), /not valid Unicode/);
});

test('verifier keys', async (t) => {
  const text = vectors.checkpoints.find((c) => c.name === 'tree of 20').text;
  for (const k of vectors.verifier_keys) {
    await t.test(k.name, async () => {
      if (!k.want) {
        await rejects(v.openCheckpoint(text, k.key), k.name);
        return;
      }
      assert.deepEqual(v.parseVerifierKey(k.key), { name: k.want.name, keyHash: k.want.key_hash, type: k.want.type, publicKey: unhex(k.want.public_key) });
      assert.equal((await v.openCheckpoint(text, k.key)).size, 20);
    });
  }
});

test('cosignatures', async (t) => {
  for (const c of vectors.cosignatures) {
    await t.test(c.name, async () => {
      const p = v.verifyCosignature(c.text, c.cosigner_key);
      if (c.want && !c.js_rejects) assert.deepEqual(await p, { name: c.want.name, time: c.want.time });
      else await rejects(p, c.name);
    });
  }
  const w1 = vectors.cosignatures[0].cosigner_key;
  const parsed = v.parseVerifierKey(w1);
  assert.equal(parsed.type, 4);
  assert.equal(parsed.name, 'witness.tlogd.example/w1');
  assert.equal(parsed.publicKey.length, 32);
});

test('proof bundles', async (t) => {
  for (const b of vectors.bundles) {
    await t.test(b.name, async () => {
      const payload = b.payload === null ? undefined : unhex(b.payload);
      const p = v.verifyProofBundle(b.text, vectors.log_key, payload);
      if (!b.want) {
        await rejects(p, b.name);
        return;
      }
      const got = await p;
      assert.equal(got.index, b.want.index);
      assert.equal(got.checkpoint.size, b.want.size);
      assert.equal(got.checkpoint.origin, 'vectors.tlogd.example/log');
      assert.deepEqual(got.entryBytes, unhex(b.want.entry));
      assert.deepEqual(got.salt, unhex(b.want.salt));
      assert.deepEqual(got.entry, v.parseEntry(unhex(b.want.entry)));
      assert.equal(got.payloadVerified, b.want.payload_verified);
    });
  }
  const b = vectors.bundles[0];
  const parsed = v.parseProofBundle(b.text);
  assert.equal(parsed.index, 6);
  assert.equal(parsed.hashes.length, 5);
  assert.ok(parsed.checkpoint.startsWith('vectors.tlogd.example/log\n20\n'));
  assert.deepEqual(v.parseRecordExtra(parsed.extra), { entry: unhex(b.want.entry), salt: unhex(b.want.salt) });
  assert.match(await rejects(v.verifyProofBundle(b.text, vectors.log_key, utf8.encode('another payload')), 'payload'), /do not match the entry's commitment/);
});

test('exports', async (t) => {
  for (const x of vectors.exports) {
    await t.test(x.name, async () => {
      const progress = [];
      const p = v.verifyExport(x.text, vectors.log_key, (n) => progress.push(n));
      if (!x.want) {
        await rejects(p, x.name);
        return;
      }
      const got = await p;
      const { header, checkpoint, ...summary } = got;
      assert.deepEqual(summary, {
        from: x.want.from, to: x.want.to, records: x.want.records, erased: x.want.erased,
        first: x.want.first, last: x.want.last, payloads: x.want.payloads,
      });
      assert.equal(checkpoint.origin, x.want.origin);
      assert.equal(checkpoint.size, x.want.size);
      assert.equal(header.format, 'tlogd-export/v1');
      assert.equal(header.from, x.want.from);
      assert.deepEqual(progress, [x.want.records]);
    });
  }
  const lone = vectors.exports.find((x) => x.name.startsWith('a lone surrogate'));
  assert.equal((await v.verifyExport(lone.text, vectors.log_key)).header.verifier_key, '\ufffd', 'as Go decodes it');
  const msg = await rejects(v.verifyExport(vectors.exports.find((x) => x.name === 'a payload changed').text, vectors.log_key), 'payload');
  assert.equal(msg, "export record 4 commitment does not verify: payload and salt do not match the entry's commitment");
  // A later record's failure does not hide an earlier one's.
  const lines = vectors.exports.find((x) => x.name === 'a payload changed').text.split('\n');
  lines[6] = '{"index":8,';
  const first = await rejects(v.verifyExport(lines.join('\n'), vectors.log_key), 'two failures');
  assert.equal(first, msg);
  lines[1] = '[]';
  assert.match(await rejects(v.verifyExport(lines.join('\n'), vectors.log_key), 'three failures'), /^export record 3 does not verify: cannot decode a JSON array into an object$/);
});

// An event naming actor and target; the links are the entry's (actor's, target's).
const ev = (actor, target, tenant = 't') => ({ actor: { id: actor }, target: { id: target }, tenant });

test('checkChain: an intact chain', () => {
  const items = [
    { index: 2, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 1 },
    { index: 5, links: [null, 2], event: ev('carol', 'alice'), subjectRoles: 2 },
    { index: 9, links: [5, 7], event: ev('alice', 'dave'), subjectRoles: 1 },
  ];
  assert.deepEqual(v.checkChain('alice', 't', items), { ok: true, breakIndex: null, reason: '' });
  assert.deepEqual(v.checkChain('alice', 't', []), { ok: true, breakIndex: null, reason: '' });
});

test('checkChain: an event missing in the middle', () => {
  const items = [
    { index: 2, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 1 },
    { index: 9, links: [5, 7], event: ev('alice', 'dave'), subjectRoles: 1 },
  ];
  assert.deepEqual(v.checkChain('alice', 't', items), {
    ok: false, breakIndex: 9,
    reason: 'entry 9 links back to entry 5, but the previous event returned is entry 2: an event of "alice" is missing',
  });
});

test('checkChain: the first event returned links back', () => {
  const items = [{ index: 9, links: [5, null], event: ev('alice', 'dave'), subjectRoles: 1 }];
  assert.deepEqual(v.checkChain('alice', 't', items), {
    ok: false, breakIndex: 9,
    reason: 'entry 9 links back to entry 5, but no earlier event was returned: an event of "alice" is missing',
  });
});

test('checkChain: a first event after another', () => {
  const items = [
    { index: 2, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 1 },
    { index: 4, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 1 },
  ];
  assert.deepEqual(v.checkChain('bob', 't', items), {
    ok: false, breakIndex: 4, reason: 'entry 4 is "bob"\'s first event, but entry 2 was returned before it',
  });
});

test('checkChain: erased events follow subjectRoles', () => {
  const items = [
    { index: 1, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 2 },
    { index: 3, links: [7, 1], event: null, subjectRoles: 2 }, // bob was the target
    { index: 6, links: [3, null], event: ev('bob', 'carol'), subjectRoles: 1 },
  ];
  assert.equal(v.checkChain('bob', 't', items).ok, true);
  const asActor = items.map((it) => (it.event ? it : { ...it, subjectRoles: 1 }));
  assert.deepEqual(v.checkChain('bob', 't', asActor), {
    ok: false, breakIndex: 3,
    reason: 'entry 3 links back to entry 7, but the previous event returned is entry 1: an event of "bob" is missing',
  });
  const unnamed = items.map((it) => (it.event ? it : { ...it, subjectRoles: 0 }));
  assert.deepEqual(v.checkChain('bob', 't', unnamed), {
    ok: false, breakIndex: 3, reason: 'the event at entry 3 does not name "bob" in tenant "t"',
  });
});

test('checkChain: actor and target both the subject', () => {
  const items = [
    { index: 1, links: [null, null], event: ev('alice', 'alice'), subjectRoles: 3 },
    { index: 4, links: [1, 1], event: ev('alice', 'alice'), subjectRoles: 3 },
  ];
  assert.equal(v.checkChain('alice', 't', items).ok, true);
  const half = [items[0], { ...items[1], links: [1, 0] }];
  assert.deepEqual(v.checkChain('alice', 't', half), {
    ok: false, breakIndex: 4,
    reason: 'entry 4 links back to entry 0, but the previous event returned is entry 1: an event of "alice" is missing',
  });
});

test('checkChain: order, tenant and record entries', () => {
  const first = { index: 5, links: [null, null], event: ev('alice', 'bob'), subjectRoles: 1 };
  assert.deepEqual(v.checkChain('alice', 't', [first, { ...first, links: [5, null] }]), {
    ok: false, breakIndex: 5, reason: 'timeline event at entry 5 is not after the previous event, entry 5',
  });
  assert.deepEqual(v.checkChain('alice', 'u', [first]), {
    ok: false, breakIndex: 5, reason: 'the event at entry 5 does not name "alice" in tenant "u"',
  });
  assert.equal(v.checkChain('alice', 't', [{ ...first, links: null }]).ok, false);
  assert.equal(v.checkChain('alice', 't', [{ ...first, links: [null] }]).ok, false);
});
