package tlog_test

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/testutil"
	"github.com/tlogd/tlogd/tlog"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the Go code")

const vectorsFile = "testdata/vectors.json"

// TestVectors regenerates testdata/vectors.json, the known answers that the
// dashboard's verify.js is tested against (ui/test/verify.test.mjs), and
// fails if the committed file differs: go test ./tlog -run TestVectors
// -update rewrites it. Every vector is checked here first: what is to be
// accepted is accepted by tlog (and by golang.org/x/mod/sumdb/tlog and
// transparency-dev/merkle for trees and proofs, by client.VerifyExport for
// exports) with the values written down, and the rest is rejected.
func TestVectors(t *testing.T) {
	got, err := marshalVectors(buildVectors(t))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, vectorsFile, got, *update, "go test ./tlog -run TestVectors -update")
}

// marshalVectors writes v as JSON with one vector per line: compact, and a
// diff names the vectors that changed.
func marshalVectors(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil { // {
		return nil, err
	}
	out := []byte("{")
	for i := 0; d.More(); i++ {
		key, err := d.Token()
		if err != nil {
			return nil, err
		}
		var val json.RawMessage
		if err := d.Decode(&val); err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = fmt.Appendf(out, "\n%q: ", key)
		var list []json.RawMessage
		if json.Unmarshal(val, &list) != nil || len(list) == 0 {
			out = append(out, val...)
			continue
		}
		out = append(out, '[')
		for j, item := range list {
			out = append(out, "\n  "...)
			out = append(out, item...)
			if j < len(list)-1 {
				out = append(out, ',')
			}
		}
		out = append(out, "\n]"...)
	}
	return append(out, "\n}\n"...), nil
}

// hexBytes is written as lowercase hex.
type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

func hexHashes(p []tlog.Hash) []hexBytes {
	out := make([]hexBytes, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// The vectors. A vector with a "want" is to be accepted with those values;
// one without is to be rejected. JSRejects marks what Go accepts and
// verify.js cannot hold exactly (numbers beyond 2^53-1), so rejects.
type vectors struct {
	Comment          string              `json:"comment"`
	LogKey           string              `json:"log_key"`
	Entries          []entryVector       `json:"entries"`
	MalformedEntries []malformedEntry    `json:"malformed_entries"`
	Records          []recordVector      `json:"records"`
	Tree             treeVector          `json:"tree"`
	Inclusion        []inclusionVector   `json:"inclusion"`
	BadInclusion     []inclusionVector   `json:"bad_inclusion"`
	Consistency      []consistencyVector `json:"consistency"`
	BadConsistency   []consistencyVector `json:"bad_consistency"`
	Ranges           []rangeVector       `json:"ranges"`
	Checkpoints      []checkpointVector  `json:"checkpoints"`
	VerifierKeys     []keyVector         `json:"verifier_keys"`
	Cosignatures     []cosignatureVector `json:"cosignatures"`
	Bundles          []bundleVector      `json:"bundles"`
	Exports          []exportVector      `json:"exports"`
}

type entryVector struct {
	Name       string   `json:"name"`
	Entry      hexBytes `json:"entry"`
	LeafHash   hexBytes `json:"leaf_hash"`
	Version    int      `json:"version"`
	Time       string   `json:"time"`
	Commitment hexBytes `json:"commitment"`
	// Links are decimal; 18446744073709551615 is tlog.NoLink. Null for
	// version 1.
	Links     []string `json:"links"`
	JSRejects string   `json:"js_rejects,omitempty"`
}

type malformedEntry struct {
	Name  string   `json:"name"`
	Entry hexBytes `json:"entry"`
}

type recordVector struct {
	Name       string   `json:"name"`
	Entry      hexBytes `json:"entry"`
	Salt       hexBytes `json:"salt"`
	Payload    hexBytes `json:"payload"`
	Commitment hexBytes `json:"commitment"` // Commit(salt, payload)
	Valid      bool     `json:"valid"`
}

type treeVector struct {
	Entries    []hexBytes `json:"entries"`
	LeafHashes []hexBytes `json:"leaf_hashes"`
	Roots      []hexBytes `json:"roots"` // roots[n] is the root of the first n leaves
}

type inclusionVector struct {
	Name  string     `json:"name,omitempty"`
	Index uint64     `json:"index"`
	Size  uint64     `json:"size"`
	Leaf  hexBytes   `json:"leaf"`
	Proof []hexBytes `json:"proof"`
	Root  hexBytes   `json:"root"`
}

type consistencyVector struct {
	Name  string     `json:"name,omitempty"`
	Size1 uint64     `json:"size1"`
	Size2 uint64     `json:"size2"`
	Root1 hexBytes   `json:"root1"`
	Root2 hexBytes   `json:"root2"`
	Proof []hexBytes `json:"proof"`
}

type rangeVector struct {
	Name       string     `json:"name"`
	Start      uint64     `json:"start"`
	Size       uint64     `json:"size"`
	Leaves     []hexBytes `json:"leaves"`
	FirstProof []hexBytes `json:"first_proof"`
	LastProof  []hexBytes `json:"last_proof"`
	Root       hexBytes   `json:"root"`
	Valid      bool       `json:"valid"`
}

type checkpointVector struct {
	Name string `json:"name"`
	Text string `json:"text"`
	// VerifierKey is the key to open Text with, when not the log key.
	VerifierKey string          `json:"verifier_key,omitempty"`
	Want        *checkpointWant `json:"want,omitempty"`
	JSRejects   string          `json:"js_rejects,omitempty"`
}

type checkpointWant struct {
	Origin       string   `json:"origin"`
	Size         uint64   `json:"size"`
	Root         hexBytes `json:"root"`
	Cosignatures []keyRef `json:"cosignatures"`
}

type keyRef struct {
	Name    string `json:"name"`
	KeyHash uint32 `json:"key_hash"`
}

// keyVector is a log verifier key, to open the checkpoint of size 20 with.
type keyVector struct {
	Name string   `json:"name"`
	Key  string   `json:"key"`
	Want *keyWant `json:"want,omitempty"`
}

type keyWant struct {
	Name      string   `json:"name"`
	KeyHash   uint32   `json:"key_hash"`
	Type      int      `json:"type"`
	PublicKey hexBytes `json:"public_key"`
}

type cosignatureVector struct {
	Name        string           `json:"name"`
	Text        string           `json:"text"`
	CosignerKey string           `json:"cosigner_key"`
	Want        *cosignatureWant `json:"want,omitempty"`
	JSRejects   string           `json:"js_rejects,omitempty"`
}

type cosignatureWant struct {
	Name string `json:"name"`
	Time int64  `json:"time"`
}

type bundleVector struct {
	Name    string      `json:"name"`
	Text    string      `json:"text"`
	Payload *hexBytes   `json:"payload"`
	Want    *bundleWant `json:"want,omitempty"`
}

type bundleWant struct {
	Index           uint64   `json:"index"`
	Size            uint64   `json:"size"`
	Entry           hexBytes `json:"entry"`
	Salt            hexBytes `json:"salt"`
	PayloadVerified bool     `json:"payload_verified"`
}

type exportVector struct {
	Name string      `json:"name"`
	Text string      `json:"text"`
	Want *exportWant `json:"want,omitempty"`
}

type exportWant struct {
	Origin   string `json:"origin"`
	Size     uint64 `json:"size"`
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	Records  int    `json:"records"`
	Erased   int    `json:"erased"`
	First    int64  `json:"first"`
	Last     int64  `json:"last"`
	Payloads bool   `json:"payloads"`
}

const (
	vecOrigin = "vectors.tlogd.example/log"
	vecSize   = 20
	vecTime   = 1700000000000
	// vecCosignTime is when the witnesses cosign, in Unix seconds.
	vecCosignTime = 1700000100
)

// vecLog is the vectors' log: vecSize entries, records and audit events,
// signed by a key derived from a fixed seed.
type vecLog struct {
	entries, salts, payloads [][]byte
	leaves                   []tlog.Hash
	roots                    []tlog.Hash // roots[n] is the root of the first n leaves
	nodes                    map[tlog.NodeID]tlog.Hash
	signer                   note.Signer
	vkey                     string
}

func newVecLog(t *testing.T) *vecLog {
	l := &vecLog{nodes: map[tlog.NodeID]tlog.Hash{}}
	l.signer, l.vkey = vecSigner(t, vecOrigin, "log")
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.roots = append(l.roots, tree.Root())
	last := map[string]uint64{}
	link := func(s string) uint64 {
		if i, ok := last[s]; ok {
			return i
		}
		return tlog.NoLink
	}
	for i := range uint64(vecSize) {
		salt := vecSeed(fmt.Sprintf("salt %d", i))[:tlog.SaltSize]
		payload := fmt.Appendf(nil, "tlogd vectors: record %d", i)
		e := tlog.Entry{Time: vecTime + i*1000 + i%3*7, Commitment: tlog.Commit(salt, payload)}
		if i%3 == 0 { // an event: alice acts on bob or carol
			target := []string{"bob", "carol"}[i/3%2]
			e.Links = []uint64{link("alice"), link(target)}
			last["alice"], last[target] = i, i
		}
		entry := e.AppendBinary(nil)
		leaf := tlog.LeafHash(entry)
		tree.Append(leaf, func(id tlog.NodeID, h tlog.Hash) { l.nodes[id] = h })
		l.entries, l.salts, l.payloads = append(l.entries, entry), append(l.salts, salt), append(l.payloads, payload)
		l.leaves, l.roots = append(l.leaves, leaf), append(l.roots, tree.Root())
	}
	return l
}

func (l *vecLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			h, ok := l.nodes[id]
			if !ok {
				return nil, fmt.Errorf("node %+v not stored", id)
			}
			out[i] = h
		}
		return out, nil
	})
}

func (l *vecLog) inclusion(t *testing.T, index, size uint64) []tlog.Hash {
	t.Helper()
	p, err := tlog.InclusionProof(index, size, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *vecLog) consistency(t *testing.T, size1, size2 uint64) []tlog.Hash {
	t.Helper()
	p, err := tlog.ConsistencyProof(size1, size2, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sign returns the signed checkpoint of the tree of the given size.
func (l *vecLog) sign(t *testing.T, size uint64) string {
	t.Helper()
	msg, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: vecOrigin, Size: size, Root: l.roots[size]}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

// vecSeed returns 32 bytes derived from a label: the vectors' keys and
// salts are fixed.
func vecSeed(label string) []byte {
	h := sha256.Sum256([]byte("tlogd vectors: " + label))
	return h[:]
}

// vecSigner returns the note signer named name with the Ed25519 key of
// the seed labelled seed, and its verifier key.
func vecSigner(t *testing.T, name, seed string) (note.Signer, string) {
	t.Helper()
	pub := ed25519.NewKeyFromSeed(vecSeed(seed)).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Split(vkey, "+")[1]
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%s+%s", name, hash, base64.StdEncoding.EncodeToString(append([]byte{1}, vecSeed(seed)...)))
	s, vkey2, err := tlog.ParseSignerKey(skey)
	if err != nil || vkey2 != vkey {
		t.Fatalf("ParseSignerKey: %v, verifier key %q, want %q", err, vkey2, vkey)
	}
	return s, vkey
}

func vecCosigner(t *testing.T, name, seed string) *tlog.Cosigner {
	t.Helper()
	c, err := tlog.NewCosigner(name, ed25519.NewKeyFromSeed(vecSeed(seed)), func() time.Time { return time.Unix(vecCosignTime, 0) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func signNote(t *testing.T, text string, signers ...note.Signer) string {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

func buildVectors(t *testing.T) vectors {
	l := newVecLog(t)
	v := vectors{
		Comment: "Known answers shared by package tlog and ui/static/js/verify.js, written by tlog/vectors_test.go " +
			"(go test ./tlog -run TestVectors -update). Bytes are hex; entry times and links are decimal strings " +
			"(link 18446744073709551615 is no link). A vector with \"want\" must be accepted with those values, " +
			"one without must be rejected; \"js_rejects\" marks values Go accepts that JavaScript numbers cannot hold, " +
			"which verify.js rejects. Checkpoints are opened with log_key unless they name a verifier_key.",
		LogKey:           l.vkey,
		Entries:          vecEntries(t),
		MalformedEntries: vecMalformedEntries(t),
		Records:          vecRecords(t),
	}
	v.Tree, v.Inclusion, v.BadInclusion = vecInclusion(t, l)
	v.Consistency, v.BadConsistency = vecConsistency(t, l)
	v.Ranges = vecRanges(t, l)
	v.Checkpoints = vecCheckpoints(t, l)
	v.VerifierKeys = vecKeys(t, l)
	v.Cosignatures = vecCosignatures(t, l)
	v.Bundles = vecBundles(t, l)
	v.Exports = vecExports(t, l)
	return v
}

func vecEntries(t *testing.T) []entryVector {
	c := tlog.Commit(vecSeed("salt")[:tlog.SaltSize], []byte("payload"))
	cases := []struct {
		name, jsRejects string
		e               tlog.Entry
	}{
		{name: "record", e: tlog.Entry{Time: vecTime, Commitment: c}},
		{name: "record at time 0", e: tlog.Entry{Commitment: c}},
		{name: "record at time 2^53-1", e: tlog.Entry{Time: 1<<53 - 1, Commitment: c}},
		{name: "record at time 2^64-1", e: tlog.Entry{Time: ^uint64(0), Commitment: c}, jsRejects: "time beyond 2^53-1"},
		{name: "event, one link: the subject's first", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{tlog.NoLink}}},
		{name: "event, one link", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{5}}},
		{name: "event, two links", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{3, 17}}},
		{name: "event, the actor's first", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{tlog.NoLink, 7}}},
		{name: "event, both subjects' first", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{tlog.NoLink, tlog.NoLink}}},
		{name: "event, link 2^53-1", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{1<<53 - 1, tlog.NoLink}}},
		{name: "event, link 2^53", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{1 << 53, 1}}, jsRejects: "link beyond 2^53-1"},
		{name: "event, link 2^64-2", e: tlog.Entry{Time: vecTime, Commitment: c, Links: []uint64{tlog.NoLink - 1}}, jsRejects: "link beyond 2^53-1"},
	}
	var out []entryVector
	for _, tc := range cases {
		b, err := tc.e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := tlog.ParseEntry(b)
		if err != nil || got.Time != tc.e.Time || got.Commitment != tc.e.Commitment || !slices.Equal(got.Links, tc.e.Links) {
			t.Fatalf("%s: ParseEntry = %+v, %v", tc.name, got, err)
		}
		leaf := tlog.LeafHash(b)
		v := entryVector{Name: tc.name, Entry: b, LeafHash: leaf[:], Version: int(b[0]),
			Time: strconv.FormatUint(got.Time, 10), Commitment: got.Commitment[:], JSRejects: tc.jsRejects}
		for _, l := range got.Links {
			v.Links = append(v.Links, strconv.FormatUint(l, 10))
		}
		out = append(out, v)
	}
	return out
}

func vecMalformedEntries(t *testing.T) []malformedEntry {
	v1 := tlog.Entry{Time: vecTime}.AppendBinary(nil)
	v2 := func(n byte, links int) []byte {
		b := append([]byte{tlog.EventEntryVersion}, v1[1:]...)
		return append(append(b, n), make([]byte, 8*links)...)
	}
	withVersion := func(v byte) []byte { return append([]byte{v}, v1[1:]...) }
	out := []malformedEntry{
		{"empty", nil},
		{"version 1, 40 bytes", v1[:40]},
		{"version 1, 42 bytes", append(slices.Clone(v1), 0)},
		{"version 2 without a link count", withVersion(tlog.EventEntryVersion)},
		{"version 2, no links", v2(0, 0)},
		{"version 2, three links", v2(3, 3)},
		{"version 2, count 1 with two links", v2(1, 2)},
		{"version 2, count 2 with one link", v2(2, 1)},
		{"version 2, a byte after the links", append(v2(1, 1), 0)},
		{"version 0", withVersion(0)},
		{"version 3", withVersion(3)},
		{"version 0xff", withVersion(0xff)},
	}
	for _, m := range out {
		if _, err := tlog.ParseEntry(m.Entry); err == nil {
			t.Fatalf("ParseEntry(%s) accepted %x", m.Name, m.Entry)
		}
	}
	return out
}

func vecRecords(t *testing.T) []recordVector {
	salt, payload := vecSeed("record salt")[:tlog.SaltSize], []byte("an audit record")
	record := tlog.Entry{Time: vecTime, Commitment: tlog.Commit(salt, payload)}.AppendBinary(nil)
	event := tlog.Entry{Time: vecTime, Commitment: tlog.Commit(salt, payload), Links: []uint64{4, tlog.NoLink}}.AppendBinary(nil)
	empty := tlog.Entry{Time: vecTime, Commitment: tlog.Commit(salt, nil)}.AppendBinary(nil)
	other := slices.Clone(salt)
	other[0] ^= 1
	cases := []struct {
		name                 string
		entry, salt, payload []byte
	}{
		{"record", record, salt, payload},
		{"event", event, salt, payload},
		{"empty payload", empty, salt, nil},
		{"payload changed", record, salt, []byte("an audit recorD")},
		{"payload extended", record, salt, append(slices.Clone(payload), 0)},
		{"salt changed", record, other, payload},
		{"salt of 15 bytes", record, salt[:15], payload},
		{"salt of 17 bytes", record, append(slices.Clone(salt), 0), payload},
		{"no salt", record, nil, payload},
		{"salt and payload moved", record, salt[:15], append(salt[15:], payload...)},
		{"malformed entry", record[:40], salt, payload},
	}
	var out []recordVector
	for _, tc := range cases {
		err := tlog.VerifyRecord(tc.entry, tc.salt, tc.payload)
		c := tlog.Commit(tc.salt, tc.payload)
		out = append(out, recordVector{Name: tc.name, Entry: tc.entry, Salt: tc.salt, Payload: tc.payload, Commitment: c[:], Valid: err == nil})
	}
	if valid := out[0].Valid && out[1].Valid && out[2].Valid && !slices.ContainsFunc(out[3:], func(r recordVector) bool { return r.Valid }); !valid {
		t.Fatalf("VerifyRecord: want the first three records valid, the others not: %+v", out)
	}
	return out
}

func vecInclusion(t *testing.T, l *vecLog) (treeVector, []inclusionVector, []inclusionVector) {
	tv := treeVector{}
	store := &sumdbStore{}
	mt := testonly.New(rfc6962.DefaultHasher)
	for i, e := range l.entries {
		hs, err := sumdb.StoredHashes(int64(i), e, store)
		if err != nil {
			t.Fatal(err)
		}
		store.hashes = append(store.hashes, hs...)
		mt.AppendData(e)
		tv.Entries = append(tv.Entries, e)
	}
	tv.LeafHashes = hexHashes(l.leaves)
	tv.Roots = hexHashes(l.roots)
	for n, root := range l.roots {
		sroot, err := sumdb.TreeHash(int64(n), store)
		if err != nil || sroot != sumdb.Hash(root) || !bytes.Equal(mt.HashAt(uint64(n)), root[:]) {
			t.Fatalf("root of size %d: tlog %v, sumdb %v (%v), merkle %x", n, root, sroot, err, mt.HashAt(uint64(n)))
		}
	}
	var good, bad []inclusionVector
	for n := uint64(1); n <= vecSize; n++ {
		for i := range n {
			p := l.inclusion(t, i, n)
			sp, err := sumdb.ProveRecord(int64(n), int64(i), store)
			if err != nil || !slices.Equal(fromSumdb(sp), p) {
				t.Fatalf("inclusion %d in %d: sumdb proves %v (%v), tlog %v", i, n, sp, err, p)
			}
			if mp, err := mt.InclusionProof(i, n); err != nil || !slices.EqualFunc(mp, p, func(a []byte, b tlog.Hash) bool { return bytes.Equal(a, b[:]) }) {
				t.Fatalf("inclusion %d in %d: merkle proves %x (%v), tlog %v", i, n, mp, err, p)
			}
			v := inclusionVector{Index: i, Size: n, Leaf: l.leaves[i][:], Proof: hexHashes(p), Root: l.roots[n][:]}
			checkInclusion(t, v, true)
			good = append(good, v)
			if len(p) > 0 {
				k := int(i+n) % len(p)
				bad = append(bad, badInclusion(t, fmt.Sprintf("hash %d flipped", k), i, n, l.leaves[i], flipped(p, k, 0), l.roots[n]))
			}
		}
	}
	i, n := uint64(5), uint64(13)
	p := l.inclusion(t, i, n)
	bad = append(bad,
		badInclusion(t, "another leaf", i, n, l.leaves[6], p, l.roots[n]),
		badInclusion(t, "index one less", i-1, n, l.leaves[i], p, l.roots[n]),
		badInclusion(t, "index one more", i+1, n, l.leaves[i], p, l.roots[n]),
		badInclusion(t, "index equal to the size", n, n, l.leaves[i], p, l.roots[n]),
		badInclusion(t, "index beyond the size", n+1, n, l.leaves[i], p, l.roots[n]),
		badInclusion(t, "size one less", i, n-1, l.leaves[i], p, l.roots[n-1]),
		badInclusion(t, "size one more", i, n+1, l.leaves[i], p, l.roots[n+1]),
		badInclusion(t, "size 0", 0, 0, l.leaves[0], nil, l.roots[0]),
		badInclusion(t, "last hash missing", i, n, l.leaves[i], p[:len(p)-1], l.roots[n]),
		badInclusion(t, "a hash too many", i, n, l.leaves[i], append(slices.Clone(p), l.leaves[0]), l.roots[n]),
		badInclusion(t, "hashes swapped", i, n, l.leaves[i], swapped(p), l.roots[n]),
		badInclusion(t, "root of another tree", i, n, l.leaves[i], p, l.roots[n+1]),
		badInclusion(t, "one leaf, another leaf", 0, 1, l.leaves[1], nil, l.roots[1]),
		badInclusion(t, "one leaf, a hash too many", 0, 1, l.leaves[0], []tlog.Hash{l.leaves[1]}, l.roots[1]),
		badInclusion(t, "root given as the proof", 0, 2, l.leaves[0], []tlog.Hash{l.roots[2]}, l.roots[2]),
	)
	return tv, good, bad
}

func badInclusion(t *testing.T, name string, index, size uint64, leaf tlog.Hash, p []tlog.Hash, root tlog.Hash) inclusionVector {
	t.Helper()
	v := inclusionVector{Name: name, Index: index, Size: size, Leaf: leaf[:], Proof: hexHashes(p), Root: root[:]}
	checkInclusion(t, v, false)
	return v
}

// checkInclusion verifies v with tlog, sumdb and merkle.
func checkInclusion(t *testing.T, v inclusionVector, valid bool) {
	t.Helper()
	leaf, root := tlog.Hash(v.Leaf), tlog.Hash(v.Root)
	p := make([]tlog.Hash, len(v.Proof))
	for i := range p {
		p[i] = tlog.Hash(v.Proof[i])
	}
	errs := []error{
		tlog.VerifyInclusion(v.Index, v.Size, leaf, p, root),
		sumdbCheckRecord(v.Index, v.Size, leaf, p, root),
		proof.VerifyInclusion(rfc6962.DefaultHasher, v.Index, v.Size, leaf[:], byteSlices(p), root[:]),
	}
	for k, err := range errs {
		if (err == nil) != valid {
			t.Fatalf("inclusion vector %q (%d in %d): verifier %d (tlog, sumdb, merkle) says %v, want valid %v", v.Name, v.Index, v.Size, k, err, valid)
		}
	}
}

func byteSlices(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func vecConsistency(t *testing.T, l *vecLog) (good, bad []consistencyVector) {
	store := newSumdbStoreOf(t, l.entries)
	mt := testonly.New(rfc6962.DefaultHasher)
	mt.AppendData(l.entries...)
	for n := uint64(0); n <= vecSize; n++ {
		for m := uint64(0); m <= n; m++ {
			p := l.consistency(t, m, n)
			if mp, err := mt.ConsistencyProof(m, n); err != nil || !slices.EqualFunc(mp, p, func(a []byte, b tlog.Hash) bool { return bytes.Equal(a, b[:]) }) {
				t.Fatalf("consistency %d to %d: merkle proves %x (%v), tlog %v", m, n, mp, err, p)
			}
			if m > 0 && m < n {
				sp, err := sumdb.ProveTree(int64(n), int64(m), store)
				if err != nil || !slices.Equal(fromSumdb(sp), p) {
					t.Fatalf("consistency %d to %d: sumdb proves %v (%v), tlog %v", m, n, sp, err, p)
				}
			}
			v := consistencyVector{Size1: m, Size2: n, Root1: l.roots[m][:], Root2: l.roots[n][:], Proof: hexHashes(p)}
			checkConsistency(t, v, true)
			good = append(good, v)
			if len(p) > 0 {
				k := int(m+n) % len(p)
				bad = append(bad, badConsistency(t, fmt.Sprintf("hash %d flipped", k), m, n, flipped(p, k, 31), l.roots[m], l.roots[n]))
			}
		}
	}
	bogus := tlog.LeafHash([]byte("not a root"))
	p := l.consistency(t, 6, 13)
	p4 := l.consistency(t, 4, 13)
	r := l.roots
	bad = append(bad,
		badConsistency(t, "from the empty tree, a hash", 0, 5, []tlog.Hash{r[5]}, r[0], r[5]),
		badConsistency(t, "from the empty tree, another root", 0, 5, nil, bogus, r[5]),
		badConsistency(t, "empty trees, the second root another", 0, 0, nil, r[0], bogus),
		badConsistency(t, "empty trees, the first root another", 0, 0, nil, bogus, r[0]),
		badConsistency(t, "equal sizes, different roots", 7, 7, nil, r[7], r[8]),
		badConsistency(t, "equal sizes, a hash", 7, 7, []tlog.Hash{r[7]}, r[7], r[7]),
		badConsistency(t, "first size beyond the second", 8, 7, nil, r[8], r[7]),
		badConsistency(t, "last hash missing", 6, 13, p[:len(p)-1], r[6], r[13]),
		badConsistency(t, "a hash too many", 6, 13, append(slices.Clone(p), r[1]), r[6], r[13]),
		badConsistency(t, "hashes swapped", 6, 13, swapped(p), r[6], r[13]),
		badConsistency(t, "no hashes", 6, 13, nil, r[6], r[13]),
		badConsistency(t, "first root another", 6, 13, p, bogus, r[13]),
		badConsistency(t, "second root another", 6, 13, p, r[6], bogus),
		badConsistency(t, "roots swapped", 6, 13, p, r[13], r[6]),
		badConsistency(t, "first size one less", 5, 13, p, r[5], r[13]),
		badConsistency(t, "second size one more", 6, 14, p, r[6], r[14]),
		badConsistency(t, "power of two, first root another", 4, 13, p4, bogus, r[13]),
		badConsistency(t, "power of two, first root as a hash", 4, 13, append([]tlog.Hash{r[4]}, p4...), r[4], r[13]),
	)
	return good, bad
}

func badConsistency(t *testing.T, name string, size1, size2 uint64, p []tlog.Hash, root1, root2 tlog.Hash) consistencyVector {
	t.Helper()
	v := consistencyVector{Name: name, Size1: size1, Size2: size2, Root1: root1[:], Root2: root2[:], Proof: hexHashes(p)}
	checkConsistency(t, v, false)
	return v
}

// checkConsistency verifies v with tlog, and with sumdb and merkle where
// their rules are tlog's: sumdb knows no empty tree, and merkle takes any
// root for it.
func checkConsistency(t *testing.T, v consistencyVector, valid bool) {
	t.Helper()
	root1, root2 := tlog.Hash(v.Root1), tlog.Hash(v.Root2)
	p := make([]tlog.Hash, len(v.Proof))
	for i := range p {
		p[i] = tlog.Hash(v.Proof[i])
	}
	errs := []error{tlog.VerifyConsistency(v.Size1, v.Size2, p, root1, root2)}
	if v.Size1 > 0 {
		errs = append(errs,
			sumdbCheckTree(v.Size1, v.Size2, p, root1, root2),
			proof.VerifyConsistency(rfc6962.DefaultHasher, v.Size1, v.Size2, byteSlices(p), root1[:], root2[:]))
	}
	for k, err := range errs {
		if (err == nil) != valid {
			t.Fatalf("consistency vector %q (%d to %d): verifier %d (tlog, sumdb, merkle) says %v, want valid %v", v.Name, v.Size1, v.Size2, k, err, valid)
		}
	}
}

func newSumdbStoreOf(t *testing.T, data [][]byte) *sumdbStore {
	s := &sumdbStore{}
	for i, d := range data {
		hs, err := sumdb.StoredHashes(int64(i), d, s)
		if err != nil {
			t.Fatal(err)
		}
		s.hashes = append(s.hashes, hs...)
	}
	return s
}

func vecRanges(t *testing.T, l *vecLog) []rangeVector {
	leaves := func(idx ...int) []tlog.Hash {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.leaves[x]
		}
		return out
	}
	span := func(from, to int) []int {
		var out []int
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return out
	}
	mk := func(name string, start, size uint64, idx []int, first, last uint64) rangeVector {
		v := rangeVector{Name: name, Start: start, Size: size, Leaves: hexHashes(leaves(idx...)), Root: l.roots[size][:]}
		if first < size {
			v.FirstProof = hexHashes(l.inclusion(t, first, size))
		}
		if last < size {
			v.LastProof = hexHashes(l.inclusion(t, last, size))
		}
		err := tlog.VerifyRange(start, leaves(idx...), size, toHashes(v.FirstProof), toHashes(v.LastProof), l.roots[size])
		v.Valid = err == nil
		return v
	}
	out := []rangeVector{
		mk("the whole tree", 0, 20, span(0, 20), 0, 19),
		mk("from 3 to 7 in tree 13", 3, 13, span(3, 8), 3, 7),
		mk("one leaf", 7, 8, []int{7}, 7, 7),
		mk("the last leaf", 19, 20, []int{19}, 19, 19),
		mk("from 4 to 12", 4, 20, span(4, 13), 4, 12),
		mk("the only leaf", 0, 1, []int{0}, 0, 0),
		mk("to the end", 12, 20, span(12, 20), 12, 19),
		mk("two leaves", 9, 20, []int{9, 10}, 9, 10),
	}
	for _, v := range out {
		if !v.Valid {
			t.Fatalf("range %q does not verify", v.Name)
		}
	}
	bad := []rangeVector{
		mk("a middle leaf replaced", 3, 13, []int{3, 4, 15, 6, 7}, 3, 7),
		mk("middle leaves swapped", 3, 13, []int{3, 5, 4, 6, 7}, 3, 7),
		mk("a leaf repeated in place of the next", 3, 13, []int{3, 4, 4, 6, 7}, 3, 7),
		mk("a leaf missing", 3, 13, []int{3, 4, 6, 7}, 3, 7),
		mk("start one more", 4, 13, span(3, 8), 3, 7),
		mk("beyond the tree", 18, 20, []int{18, 19, 0}, 18, 19),
		mk("empty", 5, 20, nil, 5, 5),
		mk("first proof of another leaf", 3, 13, span(3, 8), 4, 7),
		mk("last proof of another leaf", 3, 13, span(3, 8), 3, 6),
		mk("two leaves swapped", 9, 20, []int{10, 9}, 9, 10),
	}
	for _, v := range bad {
		if v.Valid {
			t.Fatalf("range %q verifies", v.Name)
		}
	}
	return append(out, bad...)
}

func toHashes(p []hexBytes) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// sigLines returns the signature lines of a signed note.
func sigLines(t *testing.T, msg string) (body string, lines []string) {
	t.Helper()
	i := strings.LastIndex(msg, "\n\n")
	if i < 0 {
		t.Fatalf("not a signed note: %q", msg)
	}
	return msg[:i+1], strings.SplitAfter(msg[i+2:], "\n")[:strings.Count(msg[i+2:], "\n")]
}

// fakeSig returns a signature line by an unknown key, and the key.
func fakeSig(name string, i int) (string, keyRef) {
	raw := vecSeed(fmt.Sprintf("%s signature %d", name, i))[:4+20]
	return "— " + name + " " + base64.StdEncoding.EncodeToString(raw) + "\n", keyRef{name, binary.BigEndian.Uint32(raw)}
}

// editSig changes the raw signature (key hash included) of a signature
// line.
func editSig(t *testing.T, line string, f func([]byte) []byte) string {
	t.Helper()
	i := strings.LastIndexByte(line, ' ')
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line[i+1:], "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return line[:i+1] + base64.StdEncoding.EncodeToString(f(raw)) + "\n"
}

// flipSig flips a bit of the signature of a signature line.
func flipSig(t *testing.T, line string) string {
	return editSig(t, line, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
}

// withPaddingBits sets a padding bit of padded base64 text: the same bytes
// in a non-canonical encoding.
func withPaddingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	k := strings.IndexByte(s, '=') - 1
	return s[:k] + string(alphabet[strings.IndexByte(alphabet, s[k])|1]) + s[k+1:]
}

func vecCheckpoints(t *testing.T, l *vecLog) []checkpointVector {
	signed := l.sign(t, vecSize)
	body, lines := sigLines(t, signed)
	sig := lines[0]
	root := base64.StdEncoding.EncodeToString(l.roots[vecSize][:])
	other, otherVkey := vecSigner(t, vecOrigin, "other log")
	w1, w2 := vecCosigner(t, "witness.tlogd.example/w1", "w1"), vecCosigner(t, "witness.tlogd.example/w2", "w2")
	cosigned := signNote(t, body, l.signer, w1, w2)
	_, cosigLines := sigLines(t, cosigned)
	withBody := func(b string) string { return signNote(t, b, l.signer) }
	delSigner, delVkey := vecSigner(t, "vectors\x7flog", "log")
	var fakes strings.Builder
	var fakeRefs []keyRef
	for i := range 99 {
		line, ref := fakeSig("witness.tlogd.example/w1", i)
		fakes.WriteString(line)
		fakeRefs = append(fakeRefs, ref)
	}
	extra, _ := fakeSig("witness.tlogd.example/w2", 0)
	bodyOf := func(size string, root string) string { return vecOrigin + "\n" + size + "\n" + root + "\n" }
	ref := func(s note.Signer) keyRef { return keyRef{s.Name(), s.KeyHash()} }
	want := func(size uint64, cosigs ...keyRef) *checkpointWant {
		return &checkpointWant{Origin: vecOrigin, Size: size, Root: l.roots[size][:], Cosignatures: append([]keyRef{}, cosigs...)}
	}
	cases := []checkpointVector{
		{Name: "tree of 20", Text: signed, Want: want(vecSize)},
		{Name: "empty tree", Text: l.sign(t, 0), Want: want(0)},
		{Name: "tree of 1", Text: l.sign(t, 1), Want: want(1)},
		{Name: "tree of 13", Text: l.sign(t, 13), Want: want(13)},
		{Name: "cosigned: the cosignatures are listed", Text: cosigned, Want: want(vecSize, ref(w1), ref(w2))},
		{Name: "the signature line twice", Text: signed + sig, Want: want(vecSize)},
		{Name: "an unknown key's line twice is listed once", Text: signed + cosigLines[1] + cosigLines[1], Want: want(vecSize, ref(w1))},
		{Name: "a bad line by the key after the good one is not read", Text: signed + flipSig(t, sig), Want: want(vecSize)},
		{Name: "100 signature lines", Text: signed + fakes.String(), Want: want(vecSize, fakeRefs...)},
		{Name: "size 2^64-1", Text: withBody(bodyOf("18446744073709551615", root)), JSRejects: "size beyond 2^53-1"},

		{Name: "101 signature lines", Text: signed + fakes.String() + extra},
		{Name: "size changed after signing", Text: strings.Replace(signed, "\n20\n", "\n21\n", 1)},
		{Name: "root changed after signing", Text: strings.Replace(signed, root, base64.StdEncoding.EncodeToString(l.roots[19][:]), 1)},
		{Name: "origin changed after signing", Text: strings.Replace(signed, vecOrigin+"\n", "vectors.tlogd.example/loh\n", 1)},
		{Name: "signed by another key of the same name", Text: signNote(t, body, other)},
		{Name: "signed by another key, opened with it", Text: signed, VerifierKey: otherVkey},
		{Name: "the signature line names another key", Text: strings.Replace(signed, "— "+vecOrigin+" ", "— vectors.tlogd.example/other ", 1)},
		{Name: "the signature has a bit flipped", Text: body + "\n" + flipSig(t, sig)},
		{Name: "a bad line by the key before the good one", Text: body + "\n" + flipSig(t, sig) + sig},
		{Name: "only cosignatures", Text: body + "\n" + cosigLines[1] + cosigLines[2]},
		{Name: "origin is not the key's name", Text: signNote(t, "vectors.tlogd.example/other\n20\n"+root+"\n", l.signer)},
		{Name: "DEL in the origin", Text: signNote(t, "vectors\x7flog\n20\n"+root+"\n", delSigner), VerifierKey: delVkey},
		{Name: "size with a leading zero", Text: withBody(bodyOf("020", root))},
		{Name: "size 0 with a leading zero", Text: withBody(bodyOf("00", base64.StdEncoding.EncodeToString(l.roots[0][:])))},
		{Name: "size with a plus sign", Text: withBody(bodyOf("+20", root))},
		{Name: "negative size", Text: withBody(bodyOf("-1", root))},
		{Name: "size beyond 2^64-1", Text: withBody(bodyOf("18446744073709551616", root))},
		{Name: "size empty", Text: withBody(bodyOf("", root))},
		{Name: "size in words", Text: withBody(bodyOf("twenty", root))},
		{Name: "size in hex", Text: withBody(bodyOf("0x14", root))},
		{Name: "size with a space", Text: withBody(bodyOf("20 ", root))},
		{Name: "root of 31 bytes", Text: withBody(bodyOf("20", base64.StdEncoding.EncodeToString(l.roots[20][:31])))},
		{Name: "root of 33 bytes", Text: withBody(bodyOf("20", base64.StdEncoding.EncodeToString(append(l.roots[20][:], 0))))},
		{Name: "root with non-zero padding bits", Text: withBody(bodyOf("20", withPaddingBits(root)))},
		{Name: "root without padding", Text: withBody(bodyOf("20", strings.TrimRight(root, "=")))},
		{Name: "root in hex", Text: withBody(bodyOf("20", l.roots[20].String()))},
		{Name: "root in URL-safe base64", Text: withBody(bodyOf("20", base64.URLEncoding.EncodeToString(l.roots[20][:])))},
		{Name: "an extension line", Text: withBody(body + "extension\n")},
		{Name: "two lines", Text: withBody(vecOrigin + "\n20\n")},
		{Name: "empty origin line", Text: withBody("\n" + body)},
		{Name: "no signatures", Text: body + "\n"},
		{Name: "no blank line before the signature", Text: body + sig},
		{Name: "the signature line without its newline", Text: strings.TrimSuffix(signed, "\n")},
		{Name: "a hyphen for the em dash", Text: body + "\n" + "-" + strings.TrimPrefix(sig, "—")},
		{Name: "the signature not base64", Text: body + "\n" + "— " + vecOrigin + " !!!!\n"},
		{Name: "a signature of 4 bytes", Text: body + "\n" + "— " + vecOrigin + " " + base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4}) + "\n"},
		{Name: "an empty key name", Text: body + "\n" + "—  " + strings.SplitN(sig, " ", 3)[2]},
		{Name: "a tab in the note", Text: strings.Replace(signed, "\n20\n", "\n20\t\n", 1)},
		{Name: "a carriage return in the note", Text: strings.ReplaceAll(signed, "\n", "\r\n")},
		{Name: "empty", Text: ""},
	}
	for i := range cases {
		v := &cases[i]
		verifier, err := note.NewVerifier(cmp.Or(v.VerifierKey, l.vkey))
		if err != nil {
			t.Fatal(err)
		}
		c, n, err := tlog.OpenCheckpoint([]byte(v.Text), verifier)
		if (err == nil) != (v.Want != nil || v.JSRejects != "") {
			t.Fatalf("checkpoint %q: OpenCheckpoint: %v, want valid %v", v.Name, err, v.Want != nil)
		}
		if v.Want == nil {
			continue
		}
		var cosigs []keyRef
		for _, s := range n.UnverifiedSigs {
			cosigs = append(cosigs, keyRef{s.Name, s.Hash})
		}
		if c.Origin != v.Want.Origin || c.Size != v.Want.Size || !bytes.Equal(c.Root[:], v.Want.Root) || !slices.Equal(cosigs, v.Want.Cosignatures) {
			t.Fatalf("checkpoint %q: opened %+v with cosignatures %v, want %+v", v.Name, c, cosigs, v.Want)
		}
	}
	return cases
}

// noteKeyHash is the key hash of a note or cosigner key:
// SHA-256(name || "\n" || type || public key)[:4].
func noteKeyHash(name string, key []byte) uint32 {
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return binary.BigEndian.Uint32(h[:])
}

// noteVkey returns the verifier key text of a key (its type byte first).
func noteVkey(name string, key []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, noteKeyHash(name, key), base64.StdEncoding.EncodeToString(key))
}

func vecKeys(t *testing.T, l *vecLog) []keyVector {
	signed := l.sign(t, vecSize)
	parts := strings.SplitN(l.vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	_, otherVkey := vecSigner(t, vecOrigin, "other log")
	_, otherHash, _ := strings.Cut(strings.TrimPrefix(otherVkey, vecOrigin+"+"), "+")
	want := &keyWant{Name: vecOrigin, KeyHash: noteKeyHash(vecOrigin, raw), Type: 1, PublicKey: raw[1:]}
	cases := []keyVector{
		{Name: "the log's key", Key: l.vkey, Want: want},
		{Name: "key hash in upper case", Key: parts[0] + "+" + strings.ToUpper(parts[1]) + "+" + parts[2], Want: want},
		{Name: "a newline inside the key", Key: l.vkey[:len(l.vkey)-10] + "\n" + l.vkey[len(l.vkey)-10:], Want: want},
		{Name: "another key of the log's name", Key: otherVkey},
		{Name: "the hash of another key", Key: parts[0] + "+" + otherHash[:8] + "+" + parts[2]},
		{Name: "key hash of 7 digits", Key: parts[0] + "+" + parts[1][:7] + "+" + parts[2]},
		{Name: "key hash of 9 digits", Key: parts[0] + "+0" + parts[1] + "+" + parts[2]},
		{Name: "a space in the name", Key: noteVkey("vectors tlogd.example/log", raw)},
		{Name: "empty name", Key: noteVkey("", raw)},
		{Name: "key type 2", Key: noteVkey(vecOrigin, append([]byte{2}, raw[1:]...))},
		{Name: "key type 4 (a cosigner's)", Key: noteVkey(vecOrigin, append([]byte{4}, raw[1:]...))},
		{Name: "key of 31 bytes", Key: noteVkey(vecOrigin, raw[:32])},
		{Name: "key of 33 bytes", Key: noteVkey(vecOrigin, append(slices.Clone(raw), 0))},
		{Name: "only the type byte", Key: noteVkey(vecOrigin, raw[:1])},
		{Name: "no key", Key: parts[0] + "+" + parts[1] + "+"},
		{Name: "key not base64", Key: parts[0] + "+" + parts[1] + "+!" + parts[2][1:]},
		{Name: "key cut short", Key: l.vkey[:len(l.vkey)-1]},
		{Name: "a space after the key", Key: l.vkey + " "},
		{Name: "only the name", Key: vecOrigin},
		{Name: "empty", Key: ""},
	}
	for _, v := range cases {
		verifier, err := note.NewVerifier(v.Key)
		if err == nil {
			_, _, err = tlog.OpenCheckpoint([]byte(signed), verifier)
		}
		if (err == nil) != (v.Want != nil) {
			t.Fatalf("verifier key %q: %v, want valid %v", v.Name, err, v.Want != nil)
		}
		if v.Want != nil && (verifier.Name() != v.Want.Name || verifier.KeyHash() != v.Want.KeyHash) {
			t.Fatalf("verifier key %q: %s+%08x, want %+v", v.Name, verifier.Name(), verifier.KeyHash(), v.Want)
		}
	}
	return cases
}

// vecCosignature is verifyCosignature of verify.js in Go: a valid
// cosignature by the cosigner of vkey on a strict checkpoint.
func vecCosignature(text, vkey string) (string, int64, error) {
	v, err := tlog.NewCosignatureVerifier(vkey)
	if err != nil {
		return "", 0, err
	}
	n, err := note.Open([]byte(text), note.VerifierList(v))
	if err != nil {
		return "", 0, err
	}
	if _, err := tlog.ParseCheckpoint([]byte(n.Text)); err != nil {
		return "", 0, err
	}
	t, err := tlog.CosignatureTime(n.Sigs[0])
	return v.Name(), t.Unix(), err
}

func vecCosignatures(t *testing.T, l *vecLog) []cosignatureVector {
	signed := l.sign(t, vecSize)
	body, logLines := sigLines(t, signed)
	w1, w2 := vecCosigner(t, "witness.tlogd.example/w1", "w1"), vecCosigner(t, "witness.tlogd.example/w2", "w2")
	cosigned := signNote(t, body, l.signer, w1, w2)
	_, lines := sigLines(t, cosigned)
	w1Line := lines[1]
	w1Key := w1.VerifierKey()
	parts := strings.SplitN(w1Key, "+", 3)
	extended := signNote(t, body+"extension\n", l.signer, w1)
	w1Raw, _ := base64.StdEncoding.DecodeString(parts[2])
	// cosignAt signs body as w1 at time tm, which the Cosigner's clock
	// cannot give.
	cosignAt := func(tm uint64) string {
		sig := binary.BigEndian.AppendUint32(nil, w1.KeyHash())
		sig = binary.BigEndian.AppendUint64(sig, tm)
		sig = append(sig, ed25519.Sign(ed25519.NewKeyFromSeed(vecSeed("w1")), fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", tm, body))...)
		return body + "\n" + logLines[0] + "— " + w1.Name() + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	}
	cases := []cosignatureVector{
		{Name: "witness 1", Text: cosigned, CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), vecCosignTime}},
		{Name: "witness 2", Text: cosigned, CosignerKey: w2.VerifierKey(), Want: &cosignatureWant{w2.Name(), vecCosignTime}},
		{Name: "the cosignature line twice", Text: cosigned + w1Line, CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), vecCosignTime}},
		{Name: "the cosignature before the log's signature", Text: body + "\n" + w1Line + logLines[0], CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), vecCosignTime}},
		{Name: "a bad line by the cosigner after the good one is not read", Text: cosigned + flipSig(t, w1Line), CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), vecCosignTime}},

		{Name: "no cosignature by the cosigner", Text: signed, CosignerKey: w1Key},
		{Name: "a bad line by the cosigner before the good one", Text: body + "\n" + flipSig(t, w1Line) + w1Line, CosignerKey: w1Key},
		{Name: "the timestamp changed", Text: body + "\n" + editSig(t, w1Line, func(b []byte) []byte { b[11]++; return b }), CosignerKey: w1Key},
		{Name: "timestamp 2^53-1", Text: cosignAt(1<<53 - 1), CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), 1<<53 - 1}},
		{Name: "timestamp 2^53", Text: cosignAt(1 << 53), CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), 1 << 53}, JSRejects: "time beyond 2^53-1"},
		{Name: "timestamp 0", Text: cosignAt(0), CosignerKey: w1Key, Want: &cosignatureWant{w1.Name(), 0}},
		{Name: "timestamp 2^63, signed", Text: cosignAt(1 << 63), CosignerKey: w1Key},
		{Name: "timestamp 2^64-1, signed", Text: cosignAt(1<<64 - 1), CosignerKey: w1Key},
		{Name: "the timestamp's high bit set", Text: body + "\n" + editSig(t, w1Line, func(b []byte) []byte { b[4] |= 0x80; return b }), CosignerKey: w1Key},
		{Name: "the signature has a bit flipped", Text: body + "\n" + editSig(t, w1Line, func(b []byte) []byte { b[20] ^= 4; return b }), CosignerKey: w1Key},
		{Name: "a cosignature of 71 bytes", Text: body + "\n" + editSig(t, w1Line, func(b []byte) []byte { return b[:len(b)-1] }), CosignerKey: w1Key},
		{Name: "the body changed", Text: strings.Replace(cosigned, "\n20\n", "\n21\n", 1), CosignerKey: w1Key},
		{Name: "an extension line", Text: extended, CosignerKey: w1Key},
		{Name: "another cosigner of the same name", Text: cosigned, CosignerKey: vecCosigner(t, w1.Name(), "w1 again").VerifierKey()},
		{Name: "the log's key", Text: cosigned, CosignerKey: l.vkey},
		{Name: "a note key (type 1) of the cosigner's key", Text: cosigned, CosignerKey: noteVkey(w1.Name(), append([]byte{1}, w1Raw[1:]...))},
		{Name: "key hash in upper case", Text: cosigned, CosignerKey: parts[0] + "+" + strings.ToUpper(parts[1]) + "+" + parts[2]},
		{Name: "key hash of another key", Text: cosigned, CosignerKey: parts[0] + "+" + fmt.Sprintf("%08x", w1.KeyHash()^1) + "+" + parts[2]},
		{Name: "key of 31 bytes", Text: cosigned, CosignerKey: noteVkey(w1.Name(), w1Raw[:32])},
	}
	for _, v := range cases {
		name, tm, err := vecCosignature(v.Text, v.CosignerKey)
		if (err == nil) != (v.Want != nil) || v.Want != nil && (name != v.Want.Name || tm != v.Want.Time) {
			t.Fatalf("cosignature %q: %q %d %v, want %+v", v.Name, name, tm, err, v.Want)
		}
	}
	return cases
}

// vecBundle checks a bundle as tlogctl verify does (verifyProofBundle of
// verify.js in Go).
func vecBundle(text string, payload []byte, vkey string) (tlog.Proof, tlog.Checkpoint, []byte, []byte, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return tlog.Proof{}, tlog.Checkpoint{}, nil, nil, err
	}
	p, err := tlog.ParseProof([]byte(text))
	if err != nil {
		return p, tlog.Checkpoint{}, nil, nil, err
	}
	if p.Extra == nil {
		return p, tlog.Checkpoint{}, nil, nil, fmt.Errorf("no extra")
	}
	entry, salt, err := tlog.ParseRecordExtra(p.Extra)
	if err != nil {
		return p, tlog.Checkpoint{}, nil, nil, err
	}
	cp, err := p.Verify(tlog.LeafHash(entry), v)
	if err == nil && payload != nil {
		err = tlog.VerifyRecord(entry, salt, payload)
	}
	if err == nil {
		_, err = tlog.ParseEntry(entry)
	}
	return p, cp, entry, salt, err
}

func vecBundles(t *testing.T, l *vecLog) []bundleVector {
	signed := l.sign(t, vecSize)
	w1 := vecCosigner(t, "witness.tlogd.example/w1", "w1")
	body, _ := sigLines(t, signed)
	cosigned := signNote(t, body, l.signer, w1)
	other, _ := vecSigner(t, vecOrigin, "other log")
	bundle := func(index, size uint64, cp string, edit func(*tlog.Proof)) string {
		p := tlog.Proof{Extra: tlog.RecordExtra(l.entries[index], l.salts[index]), Index: index, Hashes: l.inclusion(t, index, size), Checkpoint: []byte(cp)}
		if edit != nil {
			edit(&p)
		}
		return string(p.Marshal())
	}
	payload := func(i int) *hexBytes { p := hexBytes(l.payloads[i]); return &p }
	want := func(index, size uint64, verified bool) *bundleWant {
		return &bundleWant{Index: index, Size: size, Entry: l.entries[index], Salt: l.salts[index], PayloadVerified: verified}
	}
	text := bundle(6, vecSize, signed, nil)
	extra := func(entry []byte, salt []byte) func(*tlog.Proof) {
		return func(p *tlog.Proof) { p.Extra = tlog.RecordExtra(entry, salt) }
	}
	changed := slices.Clone(l.entries[6])
	changed[20] ^= 1
	record := bundle(7, vecSize, signed, nil) // a record: its extra ends in base64 padding
	recordExtra := base64.StdEncoding.EncodeToString(tlog.RecordExtra(l.entries[7], l.salts[7]))
	var manyHashes []tlog.Hash
	for range 65 {
		manyHashes = append(manyHashes, l.leaves[0])
	}
	cases := []bundleVector{
		{Name: "an event, with its payload", Text: text, Payload: payload(6), Want: want(6, vecSize, true)},
		{Name: "an event, without its payload", Text: text, Want: want(6, vecSize, false)},
		{Name: "a record", Text: record, Payload: payload(7), Want: want(7, vecSize, true)},
		{Name: "the only leaf", Text: bundle(0, 1, l.sign(t, 1), nil), Payload: payload(0), Want: want(0, 1, true)},
		{Name: "the last leaf", Text: bundle(19, vecSize, signed, nil), Payload: payload(19), Want: want(19, vecSize, true)},
		{Name: "a cosigned checkpoint", Text: bundle(6, vecSize, cosigned, nil), Payload: payload(6), Want: want(6, vecSize, true)},

		{Name: "another payload", Text: text, Payload: payload(5)},
		{Name: "index changed", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Index = 7 })},
		{Name: "index beyond the tree", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Index = vecSize })},
		{Name: "a proof hash flipped", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Hashes[1][0] ^= 1 })},
		{Name: "a proof hash missing", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Hashes = p.Hashes[1:] })},
		{Name: "no proof hashes", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Hashes = nil })},
		{Name: "the entry in extra changed", Text: bundle(6, vecSize, signed, extra(changed, l.salts[6])), Payload: payload(6)},
		{Name: "the salt in extra changed", Text: bundle(6, vecSize, signed, extra(l.entries[6], l.salts[5])), Payload: payload(6)},
		{Name: "no extra", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Extra = nil })},
		{Name: "extra's length padded", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) {
			p.Extra = append([]byte{byte(len(l.entries[6])) | 0x80, 0}, append(slices.Clone(l.entries[6]), l.salts[6]...)...)
		})},
		{Name: "extra with a 15-byte salt", Text: bundle(6, vecSize, signed, extra(l.entries[6], l.salts[6][:15]))},
		{Name: "extra with a 17-byte salt", Text: bundle(6, vecSize, signed, extra(l.entries[6], append(slices.Clone(l.salts[6]), 0)))},
		{Name: "extra with a length beyond it", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Extra[0] = 0x7f })},
		{Name: "extra's length overflows 64 bits", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) {
			p.Extra = append(bytes.Repeat([]byte{0xff}, 9), append([]byte{0x02}, p.Extra[1:]...)...)
		})},
		{Name: "extra empty", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Extra = []byte{} })},
		{Name: "extra with non-zero padding bits", Text: strings.Replace(record, recordExtra, withPaddingBits(recordExtra), 1), Payload: payload(7)},
		{Name: "extra's entry malformed", Text: bundle(6, vecSize, signed, extra(l.entries[6][:41], l.salts[6]))},
		{Name: "index with a leading zero", Text: strings.Replace(text, "\nindex 6\n", "\nindex 06\n", 1)},
		{Name: "index with a plus sign", Text: strings.Replace(text, "\nindex 6\n", "\nindex +6\n", 1)},
		{Name: "no index line", Text: strings.Replace(text, "\nindex 6\n", "\n", 1)},
		{Name: "another header", Text: strings.Replace(text, "tlog-proof@v1", "tlog-proof@v2", 1)},
		{Name: "65 proof hashes", Text: bundle(6, vecSize, signed, func(p *tlog.Proof) { p.Hashes = manyHashes })},
		{Name: "a proof line not base64", Text: strings.Replace(text, "\nindex 6\n", "\nindex 6\n!!!!\n", 1)},
		{Name: "a proof line of 31 bytes", Text: strings.Replace(text, "\nindex 6\n", "\nindex 6\n"+base64.StdEncoding.EncodeToString(l.leaves[0][:31])+"\n", 1)},
		{Name: "no blank line before the checkpoint", Text: strings.Replace(text, "\n\n"+vecOrigin, "\n"+vecOrigin, 1)},
		{Name: "checkpoint signed by another key", Text: bundle(6, vecSize, signNote(t, body, other), nil)},
		{Name: "checkpoint tampered", Text: strings.Replace(text, "\n20\n", "\n21\n", 1)},
		{Name: "checkpoint of a smaller tree", Text: bundle(6, vecSize, l.sign(t, 13), nil)},
		{Name: "no checkpoint", Text: strings.SplitAfter(text, "\n\n")[0]},
		{Name: "empty", Text: ""},
	}
	for _, v := range cases {
		var pl []byte
		if v.Payload != nil {
			pl = *v.Payload
		}
		p, cp, entry, salt, err := vecBundle(v.Text, pl, l.vkey)
		if (err == nil) != (v.Want != nil) {
			t.Fatalf("bundle %q: %v, want valid %v", v.Name, err, v.Want != nil)
		}
		if v.Want != nil && (p.Index != v.Want.Index || cp.Size != v.Want.Size || !bytes.Equal(entry, v.Want.Entry) || !bytes.Equal(salt, v.Want.Salt)) {
			t.Fatalf("bundle %q: index %d size %d entry %x salt %x, want %+v", v.Name, p.Index, cp.Size, entry, salt, v.Want)
		}
	}
	return cases
}

// exportFile is an export as client.Export writes it.
type exportFile struct {
	header  client.ExportHeader
	records []client.ExportRecord
}

func newExport(t *testing.T, l *vecLog, cp string, from, to uint64, payloads bool) exportFile {
	f := exportFile{header: client.ExportHeader{Format: client.ExportFormat, Origin: vecOrigin, VerifierKey: l.vkey, Checkpoint: cp,
		From: from, To: to, Payloads: payloads,
		FirstProof: byteSlices(l.inclusion(t, from, vecSize)), LastProof: byteSlices(l.inclusion(t, to-1, vecSize))}}
	for i := from; i < to; i++ {
		r := client.ExportRecord{Index: i, Entry: l.entries[i]}
		if payloads {
			r.Salt, r.Payload = l.salts[i], l.payloads[i]
		}
		f.records = append(f.records, r)
	}
	return f
}

// lines returns the export's JSON lines, without their newlines.
func (f exportFile) lines(t *testing.T) []string {
	out := []string{mustJSON(t, f.header)}
	for _, r := range f.records {
		out = append(out, mustJSON(t, r))
	}
	return out
}

func (f exportFile) text(t *testing.T) string { return strings.Join(f.lines(t), "\n") + "\n" }

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func vecExports(t *testing.T, l *vecLog) []exportVector {
	signed := l.sign(t, vecSize)
	body, _ := sigLines(t, signed)
	other, _ := vecSigner(t, vecOrigin, "other log")
	erasedBy := uint64(19)
	base := func() exportFile {
		f := newExport(t, l, signed, 3, 11, true)
		f.records[3].Salt, f.records[3].Payload, f.records[3].ErasedBy = nil, nil, &erasedBy // record 6
		return f
	}
	edit := func(f func(*exportFile)) string {
		e := base()
		e.records = slices.Clone(e.records)
		f(&e)
		return e.text(t)
	}
	// line edits line i (0: the header) of the base export's text.
	line := func(i int, f func(string) string) string {
		ls := base().lines(t)
		ls[i] = f(ls[i])
		return strings.Join(ls, "\n") + "\n"
	}
	replace := func(i int, old, new string) string {
		return line(i, func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("line %d %q has no %q", i, s, old)
			}
			return strings.Replace(s, old, new, 1)
		})
	}
	text := base().text(t)
	e3 := base64.StdEncoding.EncodeToString(l.entries[3])
	entryArray := strings.ReplaceAll(fmt.Sprint([]byte(l.entries[3])), " ", ",")
	noPayloads := newExport(t, l, signed, 0, vecSize, false)
	want := func(from, to uint64, erased int, payloads bool) *exportWant {
		return &exportWant{Origin: vecOrigin, Size: vecSize, From: from, To: to, Records: int(to - from), Erased: erased,
			First: int64(vecTime + from*1000 + from%3*7), Last: int64(vecTime + (to-1)*1000 + (to-1)%3*7), Payloads: payloads}
	}
	cases := []exportVector{
		{Name: "with payloads, one erased", Text: text, Want: want(3, 11, 1, true)},
		{Name: "without payloads", Text: noPayloads.text(t), Want: want(0, vecSize, 0, false)},
		{Name: "one record", Text: newExport(t, l, signed, 19, 20, true).text(t), Want: want(19, 20, 0, true)},
		{Name: "CRLF line ends", Text: strings.ReplaceAll(text, "\n", "\r\n"), Want: want(3, 11, 1, true)},
		{Name: "no newline at the end", Text: strings.TrimSuffix(text, "\n"), Want: want(3, 11, 1, true)},
		{Name: "keys in upper case", Text: replace(1, `"index"`, `"INDEX"`), Want: want(3, 11, 1, true)},
		{Name: "keys matched by Unicode folding", Text: replace(0, `"checkpoint"`, `"chec\u212apoint"`), Want: want(3, 11, 1, true)},
		{Name: "an entry as an array of numbers", Text: replace(1, `"`+e3+`"`, entryArray), Want: want(3, 11, 1, true)},
		{Name: "a closing brace after a record", Text: line(2, func(s string) string { return s + "}" }), Want: want(3, 11, 1, true)},
		{Name: "spaces around a record", Text: line(2, func(s string) string { return " \t" + s + " " }), Want: want(3, 11, 1, true)},
		{Name: "JSON escapes in the checkpoint", Text: replace(0, "— ", `\u2014 `), Want: want(3, 11, 1, true)},
		{Name: "a lone surrogate in the verifier key (informational)", Text: replace(0, `"verifier_key":"`+l.vkey+`"`, `"verifier_key":"\ud800"`), Want: want(3, 11, 1, true)},
		{Name: "record fields in another order, null salt", Text: strings.Replace(noPayloads.text(t), `{"index":5,"entry":"`+base64.StdEncoding.EncodeToString(l.entries[5])+`"}`,
			`{"salt":null,"entry":"`+base64.StdEncoding.EncodeToString(l.entries[5])+`","index":5}`, 1), Want: want(0, vecSize, 0, false)},
		{Name: "index repeated, the last right", Text: replace(1, `{"index":3,`, `{"index":4,"index":3,`), Want: want(3, 11, 1, true)},

		{Name: "empty file", Text: ""},
		{Name: "only a newline", Text: "\n"},
		{Name: "only the header", Text: base().lines(t)[0] + "\n"},
		{Name: "another format", Text: replace(0, client.ExportFormat, "tlogd-export/v2")},
		{Name: "an unknown header field", Text: replace(0, `{"format"`, `{"comment":"","format"`)},
		{Name: "an unknown record field", Text: replace(1, `{"index"`, `{"leaf_hash":"","index"`)},
		{Name: "the header not JSON", Text: line(0, func(s string) string { return s[:len(s)-1] })},
		{Name: "the header an array", Text: line(0, func(s string) string { return "[" + s + "]" })},
		{Name: "the header null", Text: line(0, func(string) string { return "null" })},
		{Name: "data after the header", Text: line(0, func(s string) string { return s + " x" })},
		{Name: "two objects on a line", Text: line(2, func(s string) string { return s + s })},
		{Name: "the origin not the checkpoint's", Text: replace(0, `"origin":"`+vecOrigin, `"origin":"vectors.tlogd.example/other`)},
		{Name: "the range beyond the tree", Text: replace(0, `"to":11`, `"to":21`)},
		{Name: "an empty range", Text: replace(0, `"to":11`, `"to":3`)},
		{Name: "the checkpoint signed by another key", Text: edit(func(f *exportFile) { f.header.Checkpoint = signNote(t, body, other) })},
		{Name: "the checkpoint tampered", Text: replace(0, `\n20\n`, `\n21\n`)},
		{Name: "a first proof hash of 31 bytes", Text: edit(func(f *exportFile) { f.header.FirstProof[0] = f.header.FirstProof[0][:31] })},
		{Name: "a first proof hash flipped", Text: edit(func(f *exportFile) { f.header.FirstProof[0][0] ^= 1 })},
		{Name: "no last proof", Text: edit(func(f *exportFile) { f.header.LastProof = nil })},
		{Name: "the proofs swapped", Text: edit(func(f *exportFile) { f.header.FirstProof, f.header.LastProof = f.header.LastProof, f.header.FirstProof })},
		{Name: "a record missing", Text: edit(func(f *exportFile) { f.records = slices.Delete(f.records, 2, 3) })},
		{Name: "a record repeated", Text: edit(func(f *exportFile) { f.records[2] = f.records[1] })},
		{Name: "a record too many", Text: text + newExport(t, l, signed, 11, 12, true).lines(t)[1] + "\n"},
		{Name: "the records stop early", Text: edit(func(f *exportFile) { f.records = f.records[:7] })},
		{Name: "two entries swapped", Text: edit(func(f *exportFile) {
			f.records[0].Entry, f.records[1].Entry = f.records[1].Entry, f.records[0].Entry
			f.records[0].Salt, f.records[1].Salt = f.records[1].Salt, f.records[0].Salt
			f.records[0].Payload, f.records[1].Payload = f.records[1].Payload, f.records[0].Payload
		})},
		{Name: "an entry replaced", Text: edit(func(f *exportFile) {
			r := newExport(t, l, signed, 15, 16, true).records[0]
			r.Index = 5
			f.records[2] = r
		})},
		{Name: "a record's index wrong", Text: replace(1, `{"index":3,`, `{"index":4,`)},
		{Name: "an index as a string", Text: replace(1, `{"index":3,`, `{"index":"3",`)},
		{Name: "an index with a fraction", Text: replace(1, `{"index":3,`, `{"index":3.0,`)},
		{Name: "an index with an exponent", Text: replace(1, `{"index":3,`, `{"index":3e0,`)},
		{Name: "a negative index", Text: replace(0, `"from":3`, `"from":-3`)},
		{Name: "index repeated, the last wrong", Text: replace(1, `{"index":3,`, `{"index":3,"index":4,`)},
		{Name: "a payload changed", Text: edit(func(f *exportFile) { f.records[1].Payload = []byte("tlogd vectors: record 99") })},
		{Name: "a salt missing", Text: edit(func(f *exportFile) { f.records[1].Salt = nil })},
		{Name: "an empty salt", Text: line(2, func(s string) string {
			return strings.Replace(s, `"salt":"`+base64.StdEncoding.EncodeToString(l.salts[4])+`"`, `"salt":""`, 1)
		})},
		{Name: "an erased record with its payload", Text: edit(func(f *exportFile) { f.records[3].Salt, f.records[3].Payload = l.salts[6], l.payloads[6] })},
		{Name: "an erased record with an empty salt", Text: replace(4, `"erased_by"`, `"salt":"","erased_by"`)},
		{Name: "a salt in an export without payloads", Text: strings.Replace(noPayloads.text(t), `{"index":5,`, `{"index":5,"salt":"`+base64.StdEncoding.EncodeToString(l.salts[5])+`",`, 1)},
		{Name: "an empty salt in an export without payloads", Text: strings.Replace(noPayloads.text(t), `{"index":5,`, `{"index":5,"salt":"",`, 1)},
		{Name: "an erasure in an export without payloads", Text: strings.Replace(noPayloads.text(t), `{"index":5,`, `{"index":5,"erased_by":19,`, 1)},
		{Name: "a malformed entry", Text: edit(func(f *exportFile) { f.records[1].Entry = f.records[1].Entry[:40] })},
		{Name: "an entry not base64", Text: replace(1, `"entry":"`, `"entry":"!`)},
		{Name: "an entry null", Text: replace(1, `"entry":"`+e3+`"`, `"entry":null`)},
		{Name: "a blank line between records", Text: line(2, func(s string) string { return "\n" + s })},
		{Name: "payloads as a string", Text: replace(0, `"payloads":true`, `"payloads":"true"`)},
	}
	for _, v := range cases {
		sum, err := client.VerifyExport(strings.NewReader(v.Text), l.vkey, nil)
		if (err == nil) != (v.Want != nil) {
			t.Fatalf("export %q: %v, want valid %v", v.Name, err, v.Want != nil)
		}
		if v.Want == nil {
			continue
		}
		got := exportWant{Origin: sum.Checkpoint.Origin, Size: sum.Checkpoint.Size, From: sum.Header.From, To: sum.Header.To,
			Records: int(sum.Header.To - sum.Header.From), Erased: sum.Erased, First: sum.First.UnixMilli(), Last: sum.Last.UnixMilli(), Payloads: sum.Header.Payloads}
		if got != *v.Want {
			t.Fatalf("export %q: %+v, want %+v", v.Name, got, *v.Want)
		}
	}
	return cases
}
