package tlog_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

// fuzzMaxSize is the largest tree the proof fuzzers build.
const fuzzMaxSize = 300

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(testOrigin + "\n8\n" + rootB64 + "\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte(testOrigin + "\n08\n" + rootB64 + "\n"))
	f.Add([]byte(testOrigin + "\n+8\n" + rootB64 + "\n"))
	f.Add([]byte(testOrigin + "\n8\n" + rootB64 + "\next\n"))
	f.Add([]byte(testOrigin + "\n8\n" + rootB64))
	f.Add([]byte(testOrigin + "\n8\n" + rootB64[:len(rootB64)-2] + "h=\n"))
	f.Add([]byte(testOrigin + "\r\n8\r\n" + rootB64 + "\r\n"))
	f.Add([]byte("\xff\xfe\n1\n" + rootB64 + "\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := tlog.ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedCheckpoint) {
				t.Fatalf("ParseCheckpoint(%q) = %v, not ErrMalformedCheckpoint", text, err)
			}
			if c != (tlog.Checkpoint{}) {
				t.Fatalf("ParseCheckpoint(%q) returned %+v with its error", text, c)
			}
			return
		}
		if got := c.Marshal(); !bytes.Equal(got, text) {
			t.Fatalf("Marshal(ParseCheckpoint(%q)) = %q", text, got)
		}
		if c.Origin == "" {
			t.Fatalf("ParseCheckpoint(%q) accepted an empty origin", text)
		}
		for _, r := range c.Origin {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("ParseCheckpoint(%q) accepted control character %q in the origin", text, r)
			}
		}
	})
}

func FuzzParseEntry(f *testing.F) {
	for _, v := range entryVectors {
		f.Add(mustHex(f, v.entry))
	}
	for _, v := range eventEntryVectors {
		f.Add(mustHex(f, v.entry))
	}
	f.Add([]byte{})
	f.Add([]byte{0x01})
	f.Add([]byte{0x02})
	f.Add(make([]byte, tlog.EntrySize))
	f.Add(append(mustHex(f, entryVectors[0].entry), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := tlog.ParseEntry(b)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedEntry) {
				t.Fatalf("ParseEntry(%x) = %v, not ErrMalformedEntry", b, err)
			}
			if len(b) == tlog.EntrySize && b[0] == tlog.EntryVersion {
				t.Fatalf("ParseEntry rejected a well-formed entry %x: %v", b, err)
			}
			return
		}
		got, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("MarshalBinary(ParseEntry(%x)) = %x", b, got)
		}
		if tlog.LeafHash(b) != tlog.LeafHash(got) {
			t.Fatal("leaf hash changed in a round trip")
		}
	})
}

// splitHashes cuts b into 32-byte hashes, dropping a short tail.
func splitHashes(b []byte) []tlog.Hash {
	p := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range p {
		copy(p[i][:], b[i*tlog.HashSize:])
	}
	return p
}

// flipMask returns a non-zero byte mask from a fuzzed value.
func flipMask(x uint16) byte { return 1 + byte(x>>8)%255 }

// FuzzVerifyInclusion builds the proof for a fuzzed leaf of a tree of a
// fuzzed size (1..300, deterministic leaves), requires it to verify, then
// applies one fuzzed tampering and requires failure unless the tampered
// claim is true with its honest proof. Arbitrary proof bytes and arbitrary
// 64-bit index and size must not panic, and may only pass for the honest
// proof of a true claim.
func FuzzVerifyInclusion(f *testing.F) {
	fx := newFixture(f, fuzzMaxSize)
	f.Add(uint16(7), uint16(3), uint8(0), uint16(5), uint64(3), uint64(7), []byte(nil))
	f.Add(uint16(0), uint16(0), uint8(1), uint16(1), uint64(0), uint64(1), []byte(nil))
	f.Add(uint16(299), uint16(255), uint8(2), uint16(40), uint64(1<<63), uint64(1<<64-1), bytes.Repeat([]byte{0xab}, 64))
	f.Add(uint16(2), uint16(0), uint8(2), uint16(3), uint64(0), uint64(4), []byte(nil))
	f.Add(uint16(129), uint16(64), uint8(3), uint16(2), uint64(64), uint64(130), bytes.Repeat([]byte{1}, 250))
	f.Add(uint16(99), uint16(98), uint8(4), uint16(0), uint64(98), uint64(99), []byte("x"))
	f.Add(uint16(31), uint16(17), uint8(5), uint16(300), uint64(17), uint64(32), []byte(nil))
	f.Add(uint16(31), uint16(17), uint8(6), uint16(9), uint64(17), uint64(32), []byte(nil))
	f.Fuzz(func(t *testing.T, size, index uint16, kind uint8, pos uint16, rawIndex, rawSize uint64, junk []byte) {
		n := 1 + uint64(size)%fuzzMaxSize
		i := uint64(index) % n
		p, err := tlog.InclusionProof(i, n, fx.reader(n))
		if err != nil {
			t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
		}
		want, _ := fx.honestInclusion(i, n)
		if !slices.Equal(p, want) {
			t.Fatalf("InclusionProof(%d, %d) = %v, want %v", i, n, p, want)
		}
		leaf, root := fx.leaves[i], fx.roots[n]
		if err := tlog.VerifyInclusion(i, n, leaf, p, root); err != nil {
			t.Fatalf("VerifyInclusion(%d, %d): %v", i, n, err)
		}

		ti, tn, tleaf, tp, troot := i, n, leaf, slices.Clone(p), root
		switch kind % 7 {
		case 0: // flip bits of one proof byte
			if len(p) == 0 {
				troot[pos%tlog.HashSize] ^= flipMask(pos)
				break
			}
			k := int(pos) % (len(p) * tlog.HashSize)
			tp[k/tlog.HashSize][k%tlog.HashSize] ^= flipMask(pos)
		case 1: // other index, possibly out of range
			ti = uint64(pos) % (n + 1)
			if ti == i {
				ti = n
			}
		case 2: // other size, with that size's root
			tn = 1 + uint64(pos)%fuzzMaxSize
			if tn == n {
				tn = n%fuzzMaxSize + 1
			}
			troot = fx.roots[tn]
		case 3: // truncate
			if len(p) == 0 {
				tp = append(tp, leaf)
				break
			}
			tp = tp[:int(pos)%len(p)]
		case 4: // insert a hash
			var h tlog.Hash
			copy(h[:], junk)
			k := int(pos) % (len(p) + 1)
			tp = slices.Insert(tp, k, h)
		case 5: // flip bits of the root
			troot[pos%tlog.HashSize] ^= flipMask(pos)
		case 6: // flip bits of the leaf
			tleaf[pos%tlog.HashSize] ^= flipMask(pos)
		}
		if fx.inclusionHolds(ti, tn, tleaf, tp, troot) {
			t.Fatalf("tampering kind %d did nothing", kind%7)
		}
		if err := tlog.VerifyInclusion(ti, tn, tleaf, tp, troot); !errors.Is(err, tlog.ErrProof) {
			t.Fatalf("tampered (kind %d) VerifyInclusion(%d, %d, proof %v) = %v, want ErrProof", kind%7, ti, tn, tp, err)
		}
		if err := sumdbCheckRecord(ti, tn, tleaf, tp, troot); err == nil {
			t.Fatalf("tampered (kind %d) sumdb.CheckRecord(%d, %d) passed", kind%7, ti, tn)
		}

		// Arbitrary proofs and arguments: no panic, and no false positive.
		jp := splitHashes(junk)
		for _, args := range [][2]uint64{{i, n}, {rawIndex, rawSize}, {rawIndex % (n + 1), n}} {
			err := tlog.VerifyInclusion(args[0], args[1], leaf, jp, root)
			if err == nil && !fx.inclusionHolds(args[0], args[1], leaf, jp, root) {
				t.Fatalf("VerifyInclusion(%d, %d, junk proof %v) passed", args[0], args[1], jp)
			}
			if err != nil && !errors.Is(err, tlog.ErrProof) {
				t.Fatalf("VerifyInclusion(%d, %d, junk) = %v, not ErrProof", args[0], args[1], err)
			}
		}
	})
}

// FuzzVerifyConsistency is FuzzVerifyInclusion for consistency proofs
// between fuzzed sizes 0 <= m <= n, 1 <= n <= 300.
func FuzzVerifyConsistency(f *testing.F) {
	fx := newFixture(f, fuzzMaxSize)
	f.Add(uint16(7), uint16(3), uint8(0), uint16(5), uint64(3), uint64(7), []byte(nil))
	f.Add(uint16(0), uint16(0), uint8(1), uint16(1), uint64(0), uint64(1), []byte(nil))
	f.Add(uint16(299), uint16(255), uint8(2), uint16(40), uint64(1<<63), uint64(1<<64-1), bytes.Repeat([]byte{0xab}, 64))
	f.Add(uint16(6), uint16(4), uint8(2), uint16(3), uint64(4), uint64(8), []byte(nil))
	f.Add(uint16(129), uint16(64), uint8(3), uint16(2), uint64(64), uint64(130), bytes.Repeat([]byte{1}, 250))
	f.Add(uint16(99), uint16(98), uint8(4), uint16(0), uint64(98), uint64(99), []byte("x"))
	f.Add(uint16(31), uint16(17), uint8(5), uint16(300), uint64(17), uint64(32), []byte(nil))
	f.Add(uint16(31), uint16(17), uint8(6), uint16(9), uint64(0), uint64(32), []byte(nil))
	f.Add(uint16(31), uint16(0), uint8(7), uint16(9), uint64(0), uint64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, size2, size1 uint16, kind uint8, pos uint16, raw1, raw2 uint64, junk []byte) {
		n := 1 + uint64(size2)%fuzzMaxSize
		m := uint64(size1) % (n + 1)
		p, err := tlog.ConsistencyProof(m, n, fx.reader(n))
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d): %v", m, n, err)
		}
		want, _ := fx.honestConsistency(m, n)
		if !slices.Equal(p, want) {
			t.Fatalf("ConsistencyProof(%d, %d) = %v, want %v", m, n, p, want)
		}
		r1, r2 := fx.roots[m], fx.roots[n]
		if err := tlog.VerifyConsistency(m, n, p, r1, r2); err != nil {
			t.Fatalf("VerifyConsistency(%d, %d): %v", m, n, err)
		}

		tm, tn, tp, tr1, tr2 := m, n, slices.Clone(p), r1, r2
		switch kind % 8 {
		case 0: // flip bits of one proof byte (of root1 if the proof is empty)
			if len(p) == 0 {
				tr1[pos%tlog.HashSize] ^= flipMask(pos)
				break
			}
			k := int(pos) % (len(p) * tlog.HashSize)
			tp[k/tlog.HashSize][k%tlog.HashSize] ^= flipMask(pos)
		case 1: // other size1 in [0, n+1], with that size's root
			tm = uint64(pos) % (n + 2)
			if tm == m {
				tm = n + 1
			}
			if tm < uint64(len(fx.roots)) {
				tr1 = fx.roots[tm]
			}
		case 2: // other size2 in [1, 300], with that size's root
			tn = 1 + uint64(pos)%fuzzMaxSize
			if tn == n {
				tn = n%fuzzMaxSize + 1
			}
			tr2 = fx.roots[tn]
		case 3: // truncate
			if len(p) == 0 {
				tp = append(tp, r2)
				break
			}
			tp = tp[:int(pos)%len(p)]
		case 4: // insert a hash
			var h tlog.Hash
			copy(h[:], junk)
			tp = slices.Insert(tp, int(pos)%(len(p)+1), h)
		case 5: // flip bits of root1
			tr1[pos%tlog.HashSize] ^= flipMask(pos)
		case 6: // flip bits of root2
			if m == 0 {
				// Any root2 is consistent with the empty tree: the proof
				// carries nothing to check it against.
				tp = append(tp, r2)
				break
			}
			tr2[pos%tlog.HashSize] ^= flipMask(pos)
		case 7: // swap the sizes and the roots
			if m == n {
				tm = n + 1
				break
			}
			tm, tn, tr1, tr2 = n, m, r2, r1
		}
		holds := fx.consistencyHolds(tm, tn, tp, tr1, tr2)
		err = tlog.VerifyConsistency(tm, tn, tp, tr1, tr2)
		if holds {
			// Only a size change can produce another true claim, and only
			// when both proofs are empty (size1 0, or equal sizes).
			if kind%8 != 1 && kind%8 != 2 || len(tp) != 0 {
				t.Fatalf("tampering kind %d did nothing", kind%8)
			}
			if err != nil {
				t.Fatalf("VerifyConsistency(%d, %d, %v) of a true claim: %v", tm, tn, tp, err)
			}
		} else {
			if !errors.Is(err, tlog.ErrProof) {
				t.Fatalf("tampered (kind %d) VerifyConsistency(%d, %d, proof %v) = %v, want ErrProof", kind%8, tm, tn, tp, err)
			}
			if tm > 0 {
				if err := sumdbCheckTree(tm, tn, tp, tr1, tr2); err == nil {
					t.Fatalf("tampered (kind %d) sumdb.CheckTree(%d, %d) passed", kind%8, tm, tn)
				}
			}
		}

		// Arbitrary proofs and arguments: no panic, and no false positive.
		jp := splitHashes(junk)
		for _, args := range [][2]uint64{{m, n}, {raw1, raw2}, {raw1 % (n + 1), n}} {
			ar1 := tlog.EmptyRoot
			if args[0] < uint64(len(fx.roots)) {
				ar1 = fx.roots[args[0]]
			}
			err := tlog.VerifyConsistency(args[0], args[1], jp, ar1, r2)
			if err == nil && !fx.consistencyHolds(args[0], args[1], jp, ar1, r2) && !(args[0] == 0 && len(jp) == 0) {
				t.Fatalf("VerifyConsistency(%d, %d, junk proof %v) passed", args[0], args[1], jp)
			}
			if err != nil && !errors.Is(err, tlog.ErrProof) {
				t.Fatalf("VerifyConsistency(%d, %d, junk) = %v, not ErrProof", args[0], args[1], err)
			}
		}
	})
}

// FuzzParseSignerKey: any key file text is parsed without a panic, and a key
// that parses signs notes its own verifier key accepts.
func FuzzParseSignerKey(f *testing.F) {
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(skey)
	f.Add("PRIVATE+KEY+example.com/log+00000000+AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		signer, vkey, err := tlog.ParseSignerKey(text)
		if err != nil {
			return
		}
		v, err := note.NewVerifier(vkey)
		if err != nil || v.Name() != signer.Name() || v.KeyHash() != signer.KeyHash() {
			t.Fatalf("the verifier key %q does not match the signer: %v", vkey, err)
		}
		msg, err := note.Sign(&note.Note{Text: "x\n"}, signer)
		if err != nil {
			t.Fatalf("a parsed key does not sign: %v", err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Fatalf("a parsed key signs what its verifier rejects: %v", err)
		}
	})
}

// FuzzParseRecordExtra: any proof bundle's extra data is parsed without a
// panic, and what parses encodes back to the same bytes.
func FuzzParseRecordExtra(f *testing.F) {
	f.Add(tlog.RecordExtra([]byte("entry bytes"), bytes.Repeat([]byte{7}, tlog.SaltSize)))
	f.Add([]byte{50, 1, 2})
	f.Fuzz(func(t *testing.T, extra []byte) {
		entry, salt, err := tlog.ParseRecordExtra(extra)
		if err != nil {
			return
		}
		if got := tlog.RecordExtra(entry, salt); !bytes.Equal(got, extra) {
			t.Fatalf("round trip: %x → %x", extra, got)
		}
	})
}

func FuzzParseTilePath(f *testing.F) {
	for _, p := range []string{"tile/0/000", "/tile/entries/x001/x234/067.p/5", "tile/63/x018/x446/x744/x073/x709/x551/615", "tile/0/x000/001", "tile/0/001.p/256"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tp, err := tlog.ParseTilePath(p)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedTilePath) {
				t.Fatalf("ParseTilePath(%q) = %v, not ErrMalformedTilePath", p, err)
			}
			return
		}
		// Only the canonical path of a tile parses.
		if got := tp.String(); got != p && "/"+got != p {
			t.Fatalf("ParseTilePath(%q) = %+v, whose path is %q", p, tp, got)
		}
	})
}

func FuzzParseWitnessPolicy(f *testing.F) {
	_, logVkey, _ := note.GenerateKey(rand.Reader, "log.example/1")
	_, w1, _ := tlog.GenerateCosignerKey("w1.example", rand.Reader)
	_, w2, _ := tlog.GenerateCosignerKey("w2.example", rand.Reader)
	f.Add([]byte("log " + logVkey + "\nquorum none\n"))
	f.Add([]byte("log " + logVkey + " https://log.example/\n# c\nwitness A " + w1 + "\n\twitness B " + w2 + " https://b/\ngroup G 2 A B\ngroup H any G\nquorum H\n"))
	f.Add([]byte("witness A " + w1 + "\ngroup G all A\nquorum G\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := tlog.ParsePolicy(text)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedPolicy) {
				t.Fatalf("ParsePolicy = %v, not ErrMalformedPolicy", err)
			}
			return
		}
		// Quorum evaluation terminates and is monotone: every witness
		// meets whatever a subset meets.
		// Opening arbitrary bytes as a cosigned checkpoint never panics.
		p.Open(text)
		all := p.Witnesses()
		if p.Met(nil) && !p.Met(all) {
			t.Fatal("the empty set meets the quorum but all witnesses do not")
		}
		if len(all) > 0 && p.Met(all[:1]) && !p.Met(all) {
			t.Fatal("one witness meets the quorum but all witnesses do not")
		}
	})
}

func FuzzNewCosignatureVerifier(f *testing.F) {
	_, w1, _ := tlog.GenerateCosignerKey("w1.example", rand.Reader)
	_, logVkey, _ := note.GenerateKey(rand.Reader, "log.example/1")
	f.Add(w1)
	f.Add(logVkey)
	f.Add("a+00000000+BA==")
	f.Fuzz(func(t *testing.T, vkey string) {
		v, err := tlog.NewCosignatureVerifier(vkey)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedKey) {
				t.Fatalf("NewCosignatureVerifier(%q) = %v, not ErrMalformedKey", vkey, err)
			}
			return
		}
		if v.String() != vkey {
			t.Fatalf("NewCosignatureVerifier(%q).String() = %q", vkey, v.String())
		}
		if v.Verify([]byte("o\n1\n"), make([]byte, 72)) {
			t.Fatal("a zero signature verified")
		}
	})
}

func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte("old 0\n\no\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— o AAAA\n"))
	f.Add([]byte("old 01\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := tlog.ParseAddCheckpoint(body)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedRequest) {
				t.Fatalf("ParseAddCheckpoint = %v, not ErrMalformedRequest", err)
			}
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, body) {
			t.Fatalf("Marshal(ParseAddCheckpoint(%q)) = %q", body, got)
		}
		if len(r.Proof) > 63 || len(r.Checkpoint) == 0 {
			t.Fatalf("accepted %d proof lines and a checkpoint of %d bytes", len(r.Proof), len(r.Checkpoint))
		}
		// The witness then parses the checkpoint's first lines, which may
		// be followed by extension lines: what parses must be a canonical
		// checkpoint body.
		if c, err := tlog.ParseCheckpointPrefix(r.Checkpoint); err == nil {
			if !bytes.HasPrefix(r.Checkpoint, c.Marshal()) {
				t.Fatalf("ParseCheckpointPrefix(%q) = %+v, which is not its prefix", r.Checkpoint, c)
			}
		} else if !errors.Is(err, tlog.ErrMalformedCheckpoint) {
			t.Fatalf("ParseCheckpointPrefix = %v, not ErrMalformedCheckpoint", err)
		}
	})
}

func FuzzParseCosignerKey(f *testing.F) {
	skey, _, _ := tlog.GenerateCosignerKey("w1.example", rand.Reader)
	nskey, _, _ := note.GenerateKey(rand.Reader, "log.example/1")
	f.Add(skey)
	f.Add(nskey)
	f.Add("PRIVATE+KEY+a+00000000+BA==")
	f.Fuzz(func(t *testing.T, skey string) {
		c, err := tlog.ParseCosignerKey(skey, nil)
		if err != nil {
			if !errors.Is(err, tlog.ErrMalformedKey) {
				t.Fatalf("ParseCosignerKey(%q) = %v, not ErrMalformedKey", skey, err)
			}
			return
		}
		// The key signs, and its own verifier key verifies what it signs.
		v, err := tlog.NewCosignatureVerifier(c.VerifierKey())
		if err != nil {
			t.Fatalf("the verifier key of %q does not parse: %v", skey, err)
		}
		msg := []byte("o\n1\n" + rootB64 + "\n")
		sig, err := c.Sign(msg)
		if err != nil || !v.Verify(msg, sig) {
			t.Fatalf("a cosignature by %q does not verify: %v", skey, err)
		}
	})
}
