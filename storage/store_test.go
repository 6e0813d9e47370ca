package storage

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

type testKey struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newTestKey(t testing.TB, origin string) testKey {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	return parseTestKey(t, skey)
}

func parseTestKey(t testing.TB, skey string) testKey {
	t.Helper()
	s, vkey, err := tlog.ParseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, v, vkey}
}

func testOptions(k testKey, fs vfs.FS) Options {
	// A small IndexFlushRecords makes the tests cross many background index
	// flushes and rebuild in-memory index entries on every reopen.
	return Options{Signer: k.signer, VerifierKey: k.vkey, FS: fs, CacheBytes: 8 << 20, MemTableBytes: 4 << 20, IndexFlushRecords: 700, ReserveBytes: 8 << 20, Reindex: reindexEvent}
}

func openStore(t testing.TB, dir string, fs vfs.FS, k testKey) *Store {
	t.Helper()
	s, err := Open(dir, testOptions(k, fs))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func makeRecord(payload []byte) Record {
	r := Record{Payload: payload, PayloadHash: sha256.Sum256(payload)}
	rand.Read(r.Salt[:])
	r.Commitment = tlog.Commit(r.Salt[:], payload)
	return r
}

func makeBatch(time uint64, start, n int) *Batch {
	b := &Batch{Time: time}
	for i := range n {
		b.Records = append(b.Records, makeRecord(fmt.Appendf(nil, "record %d", start+i)))
	}
	return b
}

// sumdbTree is the test's independent model of the log: the tree stored in
// x/mod/sumdb/tlog's own layout, built from our leaf hashes.
type sumdbTree struct {
	leaves []tlog.Hash
	stored []sumdb.Hash
}

func (m *sumdbTree) ReadHashes(idx []int64) ([]sumdb.Hash, error) {
	out := make([]sumdb.Hash, len(idx))
	for j, x := range idx {
		if x >= int64(len(m.stored)) {
			return nil, fmt.Errorf("model: hash %d not stored", x)
		}
		out[j] = m.stored[x]
	}
	return out, nil
}

func (m *sumdbTree) add(leaf tlog.Hash) {
	hs, err := sumdb.StoredHashesForRecordHash(int64(len(m.leaves)), sumdb.Hash(leaf), m)
	if err != nil {
		panic(err)
	}
	m.stored = append(m.stored, hs...)
	m.leaves = append(m.leaves, leaf)
}

func (m *sumdbTree) root(size uint64) tlog.Hash {
	if size == 0 {
		return tlog.EmptyRoot
	}
	h, err := sumdb.TreeHash(int64(size), m)
	if err != nil {
		panic(err)
	}
	return tlog.Hash(h)
}

// apply applies b, checks the results against the batch, and adds new leaves
// to the model.
func apply(t *testing.T, s *Store, m *sumdbTree, b *Batch) []Result {
	t.Helper()
	before := s.Head().Size
	res, head, err := s.Apply(b)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res) != len(b.Records) {
		t.Fatalf("Apply returned %d results for %d records", len(res), len(b.Records))
	}
	next := before
	for i, r := range res {
		if r.Duplicate {
			continue
		}
		if r.Index != next {
			t.Fatalf("result %d: index %d, want %d", i, r.Index, next)
		}
		next++
		e, err := tlog.ParseEntry(r.Entry)
		if err != nil {
			t.Fatal(err)
		}
		if e.Commitment != b.Records[i].Commitment || r.Salt != b.Records[i].Salt || r.LeafHash != tlog.LeafHash(r.Entry) {
			t.Fatalf("result %d does not match its record", i)
		}
		m.add(r.LeafHash)
	}
	if head.Size != next || !bytes.Equal(head.Checkpoint, s.Head().Checkpoint) {
		t.Fatalf("head size %d, want %d", head.Size, next)
	}
	return res
}

// checkStore verifies the published head against the model and every proof
// the store serves with x/mod/sumdb/tlog and with our verifier.
func checkStore(t *testing.T, s *Store, k testKey, m *sumdbTree, sizes []uint64) {
	t.Helper()
	h := s.Head()
	cp, _, err := tlog.OpenCheckpoint(h.Checkpoint, k.verifier)
	if err != nil {
		t.Fatalf("head checkpoint: %v", err)
	}
	size := uint64(len(m.leaves))
	if cp.Size != size || h.Size != size || cp.Root != h.Root {
		t.Fatalf("head size %d, checkpoint size %d, model size %d", h.Size, cp.Size, size)
	}
	if want := m.root(size); cp.Root != want {
		t.Fatalf("root at size %d = %s, sumdb says %s", size, cp.Root, want)
	}
	for _, n := range sizes {
		signed, err := s.CheckpointAt(n)
		if err != nil {
			t.Fatalf("CheckpointAt(%d): %v", n, err)
		}
		c, _, err := tlog.OpenCheckpoint(signed, k.verifier)
		if err != nil || c.Size != n || c.Root != m.root(n) {
			t.Fatalf("checkpoint at %d: %+v, %v; want root %s", n, c, err, m.root(n))
		}
		for _, i := range sampleIndexes(n) {
			p, err := s.InclusionProof(i, n)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
			}
			if err := tlog.VerifyInclusion(i, n, m.leaves[i], p, c.Root); err != nil {
				t.Fatal(err)
			}
			if err := sumdb.CheckRecord(sumdbHashes(p), int64(n), sumdb.Hash(c.Root), int64(i), sumdb.Hash(m.leaves[i])); err != nil {
				t.Fatalf("sumdb CheckRecord(%d, %d): %v", i, n, err)
			}
		}
		for _, n2 := range []uint64{n, size} {
			p, err := s.ConsistencyProof(n, n2)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", n, n2, err)
			}
			if err := tlog.VerifyConsistency(n, n2, p, c.Root, m.root(n2)); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				if err := sumdb.CheckTree(sumdbHashes(p), int64(n2), sumdb.Hash(m.root(n2)), int64(n), sumdb.Hash(c.Root)); err != nil {
					t.Fatalf("sumdb CheckTree(%d, %d): %v", n, n2, err)
				}
			}
		}
	}
}

// sumdbHashes converts a proof for x/mod/sumdb/tlog.
func sumdbHashes(p []tlog.Hash) []sumdb.Hash {
	out := make([]sumdb.Hash, len(p))
	for i := range p {
		out[i] = sumdb.Hash(p[i])
	}
	return out
}

func sampleIndexes(n uint64) []uint64 {
	if n == 0 {
		return nil
	}
	out := []uint64{0, n - 1, n / 2, n / 3}
	if n > 300 {
		out = append(out, 255, 256, 257, n-257)
	}
	return out
}

func TestApplyProofsAcrossTileBoundaries(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	s := openStore(t, t.TempDir(), nil, k)
	defer s.Close()
	m := &sumdbTree{}
	sizes := []uint64{0}
	checkStore(t, s, k, m, sizes)
	next := 0
	// Batch sizes chosen to end exactly on and around tile edges (256, 65536).
	for _, n := range []int{1, 1, 2, 3, 249, 1, 255, 256, 257, 511, 1000, 4096, 60000, 4} {
		apply(t, s, m, makeBatch(uint64(1000+next), next, n))
		next += n
		sizes = append(sizes, uint64(next))
		checkStore(t, s, k, m, sizes[max(0, len(sizes)-3):])
	}
	checkStore(t, s, k, m, sizes)
	if got := s.Head().Size; got != 66636 {
		t.Fatalf("size %d", got)
	}
}

func TestReopenKeepsTreeAndContinues(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	m := &sumdbTree{}
	var sizes []uint64
	next := 0
	for round, n := range []int{0, 300, 1, 255, 70000} {
		s := openStore(t, dir, nil, k)
		checkStore(t, s, k, m, sizes)
		if n > 0 {
			apply(t, s, m, makeBatch(uint64(round), next, n))
			next += n
			sizes = append(sizes, uint64(next))
		}
		checkStore(t, s, k, m, sizes)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDedup(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	s := openStore(t, dir, nil, k)
	m := &sumdbTree{}
	a, b := makeRecord([]byte("alice created")), makeRecord([]byte("bob deleted"))
	a2 := makeRecord([]byte("alice created")) // same payload, other salt
	res := apply(t, s, m, &Batch{Time: 5, Records: []Record{a, b, a2}})
	if res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate {
		t.Fatalf("duplicate flags %v %v %v", res[0].Duplicate, res[1].Duplicate, res[2].Duplicate)
	}
	if res[2].Index != 0 || res[2].Salt != a.Salt || !bytes.Equal(res[2].Entry, res[0].Entry) {
		t.Fatalf("in-batch duplicate answered %+v, want the first occurrence", res[2])
	}
	if s.Head().Size != 2 {
		t.Fatalf("size %d, want 2", s.Head().Size)
	}
	// A batch of only duplicates adds nothing and signs nothing new.
	before := s.Head()
	res = apply(t, s, m, &Batch{Time: 6, Records: []Record{makeRecord([]byte("bob deleted"))}})
	if !res[0].Duplicate || res[0].Index != 1 || res[0].Salt != b.Salt {
		t.Fatalf("duplicate of committed record: %+v", res[0])
	}
	if !bytes.Equal(s.Head().Checkpoint, before.Checkpoint) {
		t.Fatal("a batch of duplicates changed the checkpoint")
	}
	s.Close()
	// The dedup filter is rebuilt on open.
	s = openStore(t, dir, nil, k)
	defer s.Close()
	res = apply(t, s, m, &Batch{Time: 7, Records: []Record{makeRecord([]byte("alice created")), makeRecord([]byte("carol added"))}})
	if !res[0].Duplicate || res[0].Index != 0 || res[1].Duplicate || res[1].Index != 2 {
		t.Fatalf("after reopen: %+v", res)
	}
	checkStore(t, s, k, m, []uint64{0, 2, 3})
}

func TestEntriesAndLeafIndex(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	s := openStore(t, t.TempDir(), nil, k)
	defer s.Close()
	m := &sumdbTree{}
	var batches []*Batch
	next := 0
	for _, n := range []int{3, 1, 500, 7, 900} {
		b := makeBatch(uint64(100+next), next, n)
		batches = append(batches, b)
		apply(t, s, m, b)
		next += n
	}
	var all []Record
	for _, b := range batches {
		all = append(all, b.Records...)
	}
	for _, tc := range []struct {
		start uint64
		count int
		want  int
	}{{0, 1, 1}, {0, 511, 511}, {2, 3, 3}, {3, 1, 1}, {4, 500, 500}, {505, 100, 100}, {510, 1, 1}, {1400, 100, 11}} {
		got, err := s.Entries(tc.start, tc.count, true, math.MaxInt)
		if err != nil {
			t.Fatalf("Entries(%d, %d): %v", tc.start, tc.count, err)
		}
		if len(got) != tc.want {
			t.Fatalf("Entries(%d, %d) returned %d, want %d", tc.start, tc.count, len(got), tc.want)
		}
		for j, e := range got {
			i := tc.start + uint64(j)
			r := all[i]
			if e.Index != i || tlog.LeafHash(e.Entry) != m.leaves[i] || !bytes.Equal(e.Payload, r.Payload) || !bytes.Equal(e.Salt, r.Salt[:]) {
				t.Fatalf("entry %d does not match record", i)
			}
			if err := tlog.VerifyRecord(e.Entry, e.Salt, e.Payload); err != nil {
				t.Fatal(err)
			}
		}
		noPayload, err := s.Entries(tc.start, tc.count, false, math.MaxInt)
		if err != nil || len(noPayload) != tc.want || noPayload[0].Payload != nil || noPayload[0].Salt != nil {
			t.Fatalf("Entries without payloads: %v", err)
		}
	}
	if _, err := s.Entries(1411, 1, false, math.MaxInt); !errors.Is(err, ErrBeyondTree) {
		t.Fatalf("Entries past the end: %v", err)
	}
	for i := range m.leaves {
		got, err := s.LeafIndex(m.leaves[i])
		if err != nil || got != uint64(i) {
			t.Fatalf("LeafIndex(leaf %d) = %d, %v", i, got, err)
		}
	}
	if _, err := s.LeafIndex(tlog.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown leaf: %v", err)
	}
	for i, r := range all {
		e, err := s.FindPayload(r.PayloadHash)
		if err != nil || e.Index != uint64(i) || !bytes.Equal(e.Payload, r.Payload) || !bytes.Equal(e.Salt, r.Salt[:]) {
			t.Fatalf("FindPayload(record %d) = %d, %v", i, e.Index, err)
		}
	}
	if _, err := s.FindPayload(sha256.Sum256([]byte("never appended"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown payload: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	s := openStore(t, t.TempDir(), nil, k)
	defer s.Close()
	m := &sumdbTree{}
	apply(t, s, m, makeBatch(1, 0, 5))
	apply(t, s, m, makeBatch(1, 5, 5))
	for name, err := range map[string]error{
		"checkpoint beyond": errOnly(s.CheckpointAt(11)),
		"inclusion size":    errOnly(s.InclusionProof(0, 11)),
		"inclusion index":   errOnly(s.InclusionProof(10, 10)),
		"consistency":       errOnly(s.ConsistencyProof(1, 11)),
	} {
		if !errors.Is(err, ErrBeyondTree) {
			t.Errorf("%s: %v, want ErrBeyondTree", name, err)
		}
	}
	if _, err := s.CheckpointAt(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("checkpoint at unsigned size: %v", err)
	}
	if _, err := s.ConsistencyProof(6, 5); err == nil {
		t.Error("consistency with first > second succeeded")
	}
}

func errOnly[T any](_ T, err error) error { return err }

func TestLogTimeNeverGoesBack(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	s := openStore(t, dir, nil, k)
	m := &sumdbTree{}
	r1 := apply(t, s, m, makeBatch(5000, 0, 2))
	r2 := apply(t, s, m, makeBatch(4000, 2, 2)) // clock stepped back
	s.Close()
	s = openStore(t, dir, nil, k)
	defer s.Close()
	r3 := apply(t, s, m, makeBatch(3000, 4, 1)) // and again, after a restart
	r4 := apply(t, s, m, makeBatch(9000, 5, 1))
	want := []uint64{5000, 5000, 5000, 5000, 5000, 9000}
	var got []uint64
	for _, rs := range [][]Result{r1, r2, r3, r4} {
		for _, r := range rs {
			e, _ := tlog.ParseEntry(r.Entry)
			got = append(got, e.Time)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("log times %v, want %v", got, want)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, "example.com/log")
	s := openStore(t, dir, nil, k)
	apply(t, s, &sumdbTree{}, makeBatch(1, 0, 3))
	s.Close()
	for name, other := range map[string]testKey{
		"same origin, other key": newTestKey(t, "example.com/log"),
		"other origin":           newTestKey(t, "example.com/other"),
	} {
		_, err := Open(dir, testOptions(other, nil))
		if !errors.Is(err, ErrWrongKey) {
			t.Errorf("%s: Open = %v, want ErrWrongKey", name, err)
		}
	}
	// The right key still opens it, unharmed.
	s = openStore(t, dir, nil, k)
	defer s.Close()
	if s.Head().Size != 3 {
		t.Fatalf("size %d after refused opens", s.Head().Size)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, "example.com/log")
	s := openStore(t, dir, nil, k)
	defer s.Close()
	s2, err := Open(dir, testOptions(k, nil))
	if err == nil {
		s2.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
	// Another process gets ErrLocked (tested with the real binary in
	// cmd/tlogd); Pebble reports a second open in the same process itself.
	t.Logf("second Open: %v", err)
}

func TestClosed(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	s := openStore(t, t.TempDir(), nil, k)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(makeBatch(1, 0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, err := s.InclusionProof(0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}

func TestStaleIndexTablesRemoved(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	fs := vfs.NewMem()
	s := openStore(t, "data", fs, k)
	m := &sumdbTree{}
	apply(t, s, m, makeBatch(1, 0, 50))
	s.Close()
	// A crash between writing an index table and ingesting it leaves it.
	f, err := fs.Create("data/index-d-00000000000000000050.sst", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half-written"))
	f.Close()
	s = openStore(t, "data", fs, k)
	defer s.Close()
	if _, err := fs.Stat("data/index-d-00000000000000000050.sst"); err == nil {
		t.Fatal("stale index table survived Open")
	}
	checkStore(t, s, k, m, []uint64{50})
}

// TestReopenKeepsEveryProof checks, after a close and reopen, every
// inclusion proof at every signed size and every consistency proof between
// signed sizes, with x/mod/sumdb/tlog.
func TestReopenKeepsEveryProof(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	s := openStore(t, dir, nil, k)
	m := &sumdbTree{}
	sizes := []uint64{0}
	next := 0
	for _, n := range []int{1, 15, 16, 17, 200, 3, 300, 700} {
		apply(t, s, m, makeBatch(uint64(next), next, n))
		next += n
		sizes = append(sizes, uint64(next))
	}
	before := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil, k)
	defer s.Close()
	if h := s.Head(); h.Size != before.Size || h.Root != before.Root || !bytes.Equal(h.Checkpoint, before.Checkpoint) {
		t.Fatalf("reopened head %d %s, before %d %s", h.Size, h.Root, before.Size, before.Root)
	}
	for _, n := range sizes {
		root := sumdb.Hash(m.root(n))
		for i := range n {
			p, err := s.InclusionProof(i, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := sumdb.CheckRecord(sumdbHashes(p), int64(n), root, int64(i), sumdb.Hash(m.leaves[i])); err != nil {
				t.Fatalf("inclusion of %d at %d after reopen: %v", i, n, err)
			}
		}
		for _, n2 := range sizes {
			if n2 < n || n == 0 {
				continue
			}
			p, err := s.ConsistencyProof(n, n2)
			if err != nil {
				t.Fatal(err)
			}
			if err := sumdb.CheckTree(sumdbHashes(p), int64(n2), sumdb.Hash(m.root(n2)), int64(n), root); err != nil {
				t.Fatalf("consistency %d → %d after reopen: %v", n, n2, err)
			}
		}
	}
}
