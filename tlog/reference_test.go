package tlog_test

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// refTree is a naive Merkle tree written straight from the recursive
// definitions of RFC 6962 §2.1 (MTH, PATH, PROOF and SUBPROOF), with
// crypto/sha256 only. It shares no code with package tlog or with the
// libraries tlog uses, so that it can serve as a reference. MTH values are
// memoized by range; that changes the cost, not the definition.
type refTree struct {
	leaves [][]byte // leaf data D[0:n]
	memo   map[[2]int]tlog.Hash
}

func newRefTree(leaves [][]byte) *refTree {
	return &refTree{leaves: leaves, memo: make(map[[2]int]tlog.Hash)}
}

// splitPoint returns k, the largest power of two smaller than n (n > 1).
func splitPoint(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// mth returns MTH(D[lo:hi]).
func (r *refTree) mth(lo, hi int) tlog.Hash {
	key := [2]int{lo, hi}
	if h, ok := r.memo[key]; ok {
		return h
	}
	var h tlog.Hash
	switch n := hi - lo; n {
	case 0:
		h = sha256.Sum256(nil)
	case 1:
		h = sha256.Sum256(append([]byte{0x00}, r.leaves[lo]...))
	default:
		k := splitPoint(n)
		left, right := r.mth(lo, lo+k), r.mth(lo+k, hi)
		buf := append([]byte{0x01}, left[:]...)
		h = sha256.Sum256(append(buf, right[:]...))
	}
	r.memo[key] = h
	return h
}

// path returns PATH(m, D[lo:hi]), the audit path for leaf lo+m.
func (r *refTree) path(m, lo, hi int) []tlog.Hash {
	n := hi - lo
	if n == 1 {
		return []tlog.Hash{}
	}
	k := splitPoint(n)
	if m < k {
		return append(r.path(m, lo, lo+k), r.mth(lo+k, hi))
	}
	return append(r.path(m-k, lo+k, hi), r.mth(lo, lo+k))
}

// proof returns PROOF(m, D[0:n]) for 0 < m <= n.
func (r *refTree) proof(m, n int) []tlog.Hash {
	return r.subproof(m, 0, n, true)
}

// subproof returns SUBPROOF(m, D[lo:hi], b).
func (r *refTree) subproof(m, lo, hi int, b bool) []tlog.Hash {
	n := hi - lo
	if m == n {
		if b {
			return []tlog.Hash{}
		}
		return []tlog.Hash{r.mth(lo, hi)}
	}
	k := splitPoint(n)
	if m <= k {
		return append(r.subproof(m, lo, lo+k, b), r.mth(lo+k, hi))
	}
	return append(r.subproof(m-k, lo+k, hi, false), r.mth(lo, lo+k))
}

// leafData returns the deterministic data of leaf i of the test trees. All
// leaves are distinct, so no two subtrees have the same hash.
func leafData(i int) []byte {
	return fmt.Appendf(nil, "tlogd test leaf %d", i)
}

// fixture is a log of deterministic leaves built with tlog.Tree, together
// with a naive in-memory store of every perfect-subtree hash the tree
// reported while appending, the root after every append, and the reference
// tree over the same leaves.
type fixture struct {
	ref    *refTree
	leaves []tlog.Hash // leaves[i] is the leaf hash of leaf i
	roots  []tlog.Hash // roots[n] is Tree.Root() at size n
	nodes  map[tlog.NodeID]tlog.Hash
}

// wantVisited returns the nodes that appending leaf k must report, lowest
// level first: the leaf and every perfect subtree that ends with it.
func wantVisited(k uint64) []tlog.NodeID {
	ids := []tlog.NodeID{{Level: 0, Index: k}}
	for level := uint(1); (k+1)%(1<<level) == 0; level++ {
		ids = append(ids, tlog.NodeID{Level: level, Index: (k+1)>>level - 1})
	}
	return ids
}

// nodeRange returns the leaves [lo, hi) under a perfect subtree.
func nodeRange(id tlog.NodeID) (lo, hi int) {
	return int(id.Index << id.Level), int((id.Index + 1) << id.Level)
}

// newFixture appends n leaves to a new tlog.Tree. It checks that every
// Append reports exactly wantVisited, with the reference hash of each node,
// each node once, and that the size and the root match the reference after
// every step.
func newFixture(tb testing.TB, n int) *fixture {
	tb.Helper()
	data := make([][]byte, n)
	for i := range data {
		data[i] = leafData(i)
	}
	return newFixtureFromData(tb, data)
}

func newFixtureFromData(tb testing.TB, data [][]byte) *fixture {
	tb.Helper()
	f := &fixture{
		ref:   newRefTree(data),
		nodes: make(map[tlog.NodeID]tlog.Hash),
	}
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		tb.Fatalf("NewTree(0, nil): %v", err)
	}
	f.roots = append(f.roots, tree.Root())
	if f.roots[0] != tlog.EmptyRoot {
		tb.Fatalf("empty tree root = %v, want %v", f.roots[0], tlog.EmptyRoot)
	}
	for i, d := range data {
		leaf := tlog.LeafHash(d)
		if want := f.ref.mth(i, i+1); leaf != want {
			tb.Fatalf("LeafHash(leaf %d) = %v, want %v", i, leaf, want)
		}
		f.leaves = append(f.leaves, leaf)
		var visited []tlog.NodeID
		tree.Append(leaf, func(id tlog.NodeID, h tlog.Hash) {
			visited = append(visited, id)
			if _, dup := f.nodes[id]; dup {
				tb.Errorf("append leaf %d: node %d/%d reported again", i, id.Level, id.Index)
			}
			if lo, hi := nodeRange(id); hi > i+1 {
				tb.Errorf("append leaf %d: node %d/%d covers [%d, %d), beyond the tree", i, id.Level, id.Index, lo, hi)
			} else if want := f.ref.mth(lo, hi); h != want {
				tb.Errorf("append leaf %d: node %d/%d = %v, want MTH(D[%d:%d]) = %v", i, id.Level, id.Index, h, lo, hi, want)
			}
			f.nodes[id] = h
		})
		if want := wantVisited(uint64(i)); !slices.Equal(visited, want) {
			tb.Fatalf("append leaf %d: visited %v, want %v", i, visited, want)
		}
		if got, want := tree.Size(), uint64(i+1); got != want {
			tb.Fatalf("after append leaf %d: Size() = %d, want %d", i, got, want)
		}
		root := tree.Root()
		if want := f.ref.mth(0, i+1); root != want {
			tb.Fatalf("Root() at size %d = %v, want MTH = %v", i+1, root, want)
		}
		f.roots = append(f.roots, root)
	}
	return f
}

// reader returns a HashReader over the perfect subtrees of the tree of the
// given size. Asking for a node that is not complete at that size is an
// error, as it would be for a log that has not grown that far yet.
func (f *fixture) reader(size uint64) tlog.HashReader {
	return tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			if _, hi := nodeRange(id); uint64(hi) > size {
				return nil, fmt.Errorf("node %d/%d is not in the tree of size %d", id.Level, id.Index, size)
			}
			h, ok := f.nodes[id]
			if !ok {
				return nil, fmt.Errorf("node %d/%d not stored", id.Level, id.Index)
			}
			out[i] = h
		}
		return out, nil
	})
}

// honestInclusion returns the reference inclusion proof, and false if the
// arguments are out of range for the fixture.
func (f *fixture) honestInclusion(index, size uint64) ([]tlog.Hash, bool) {
	if index >= size || size >= uint64(len(f.roots)) {
		return nil, false
	}
	return f.ref.path(int(index), 0, int(size)), true
}

// honestConsistency returns the reference consistency proof (empty from
// size 0), and false if the arguments are out of range for the fixture.
func (f *fixture) honestConsistency(size1, size2 uint64) ([]tlog.Hash, bool) {
	if size1 > size2 || size2 >= uint64(len(f.roots)) {
		return nil, false
	}
	if size1 == 0 {
		return []tlog.Hash{}, true
	}
	return f.ref.proof(int(size1), int(size2)), true
}

// inclusionHolds reports whether the claim is true in the fixture's log and p
// is its honest proof: exactly the case in which VerifyInclusion must pass.
func (f *fixture) inclusionHolds(index, size uint64, leaf tlog.Hash, p []tlog.Hash, root tlog.Hash) bool {
	want, ok := f.honestInclusion(index, size)
	return ok && leaf == f.leaves[index] && root == f.roots[size] && slices.Equal(p, want)
}

// consistencyHolds is inclusionHolds for consistency proofs.
func (f *fixture) consistencyHolds(size1, size2 uint64, p []tlog.Hash, root1, root2 tlog.Hash) bool {
	want, ok := f.honestConsistency(size1, size2)
	return ok && root1 == f.roots[size1] && root2 == f.roots[size2] && slices.Equal(p, want)
}

// sumdbStore is a golang.org/x/mod/sumdb/tlog hash store over the same
// leaves, built with sumdb's own code.
type sumdbStore struct{ hashes []sumdb.Hash }

func (s *sumdbStore) ReadHashes(indexes []int64) ([]sumdb.Hash, error) {
	out := make([]sumdb.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("sumdb hash %d not stored", x)
		}
		out[i] = s.hashes[x]
	}
	return out, nil
}

func newSumdbStore(tb testing.TB, n int) *sumdbStore {
	tb.Helper()
	s := &sumdbStore{}
	for i := range n {
		hs, err := sumdb.StoredHashes(int64(i), leafData(i), s)
		if err != nil {
			tb.Fatalf("sumdb.StoredHashes(%d): %v", i, err)
		}
		s.hashes = append(s.hashes, hs...)
	}
	return s
}

// toSumdb converts a proof to sumdb's hash type.
func toSumdb(p []tlog.Hash) []sumdb.Hash {
	out := make([]sumdb.Hash, len(p))
	for i, h := range p {
		out[i] = sumdb.Hash(h)
	}
	return out
}

func fromSumdb(p []sumdb.Hash) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

// sumdbCheckRecord verifies an inclusion proof with sumdb, whose arguments
// are (proof, tree size, root, index, leaf hash). Sizes and indexes that do
// not fit in an int64 are out of its domain and reported as failures.
func sumdbCheckRecord(index, size uint64, leaf tlog.Hash, p []tlog.Hash, root tlog.Hash) error {
	if int64(index) < 0 || int64(size) < 0 {
		return fmt.Errorf("out of sumdb's range")
	}
	return sumdb.CheckRecord(toSumdb(p), int64(size), sumdb.Hash(root), int64(index), sumdb.Hash(leaf))
}

// sumdbCheckTree verifies a consistency proof with sumdb, whose arguments are
// (proof, newer size, newer root, older size, older root). sumdb does not
// handle size 0.
func sumdbCheckTree(size1, size2 uint64, p []tlog.Hash, root1, root2 tlog.Hash) error {
	if int64(size1) < 0 || int64(size2) < 0 {
		return fmt.Errorf("out of sumdb's range")
	}
	return sumdb.CheckTree(toSumdb(p), int64(size2), sumdb.Hash(root2), int64(size1), sumdb.Hash(root1))
}

// TestReferenceTree checks the reference itself, so that it cannot silently
// agree with a wrong tlog: against the 8-leaf known-answer roots, and against
// the worked example of RFC 6962 §2.1.3, a 7-leaf tree whose nodes the RFC
// names a..l (a..f and j are leaves d0..d6; g, h, i, k, l are interior).
func TestReferenceTree(t *testing.T) {
	ref := newRefTree(katLeaves(t))
	for n, want := range katRoots {
		if got := ref.mth(0, n).String(); got != want {
			t.Errorf("reference MTH(D[0:%d]) = %s, want %s", n, got, want)
		}
	}

	r := newRefTree(katLeaves(t)[:7])
	b, c, d := r.mth(1, 2), r.mth(2, 3), r.mth(3, 4)
	f, j := r.mth(5, 6), r.mth(6, 7)
	g, h, i := r.mth(0, 2), r.mth(2, 4), r.mth(4, 6)
	k, l := r.mth(0, 4), r.mth(4, 7)
	tests := []struct {
		name string
		got  []tlog.Hash
		want []tlog.Hash
	}{
		{"PATH(0)", r.path(0, 0, 7), []tlog.Hash{b, h, l}},
		{"PATH(3)", r.path(3, 0, 7), []tlog.Hash{c, g, l}},
		{"PATH(4)", r.path(4, 0, 7), []tlog.Hash{f, j, k}},
		{"PATH(6)", r.path(6, 0, 7), []tlog.Hash{i, k}},
		{"PROOF(3)", r.proof(3, 7), []tlog.Hash{c, d, g, l}},
		{"PROOF(4)", r.proof(4, 7), []tlog.Hash{l}},
		{"PROOF(6)", r.proof(6, 7), []tlog.Hash{i, j, k}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("reference %s in the 7-leaf tree = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if got := nodeHashRef(g, h); got != k {
		t.Errorf("k = %v, want H(g, h) = %v", k, got)
	}
}

// nodeHashRef is SHA-256(0x01 || left || right), written out.
func nodeHashRef(left, right tlog.Hash) tlog.Hash {
	return sha256.Sum256(append(append([]byte{0x01}, left[:]...), right[:]...))
}
