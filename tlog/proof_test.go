package tlog_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// maxProofSize is the largest tree for which every proof is checked.
const maxProofSize = 130

// TestInclusionProofAgainstReference checks the inclusion proof of every
// leaf in every tree of size 1..130: equal to RFC 6962 PATH, equal to what
// sumdb.ProveRecord builds from its own storage, and accepted by
// VerifyInclusion and by sumdb.CheckRecord.
func TestInclusionProofAgainstReference(t *testing.T) {
	f := newFixture(t, maxProofSize)
	sums := newSumdbStore(t, maxProofSize)
	for n := uint64(1); n <= maxProofSize; n++ {
		t.Run("size="+strconv.Itoa(int(n)), func(t *testing.T) {
			root := f.roots[n]
			for i := range n {
				p, err := tlog.InclusionProof(i, n, f.reader(n))
				if err != nil {
					t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
				}
				if want := f.ref.path(int(i), 0, int(n)); !slices.Equal(p, want) {
					t.Errorf("InclusionProof(%d, %d) = %v, want PATH = %v", i, n, p, want)
				}
				sp, err := sumdb.ProveRecord(int64(n), int64(i), sums)
				if err != nil {
					t.Fatalf("sumdb.ProveRecord(%d, %d): %v", n, i, err)
				}
				if !slices.Equal(p, fromSumdb(sp)) {
					t.Errorf("InclusionProof(%d, %d) = %v, sumdb.ProveRecord = %v", i, n, p, sp)
				}
				if err := tlog.VerifyInclusion(i, n, f.leaves[i], p, root); err != nil {
					t.Errorf("VerifyInclusion(%d, %d): %v", i, n, err)
				}
				if err := sumdbCheckRecord(i, n, f.leaves[i], p, root); err != nil {
					t.Errorf("sumdb.CheckRecord(%d, %d): %v", i, n, err)
				}
			}
		})
	}
}

// TestConsistencyProofAgainstReference checks the consistency proof of
// every pair 0 <= m <= n <= 130: equal to RFC 6962 PROOF (empty from size 0
// and between equal sizes), equal to sumdb.ProveTree, and accepted by
// VerifyConsistency and by sumdb.CheckTree (which has no size 0).
func TestConsistencyProofAgainstReference(t *testing.T) {
	f := newFixture(t, maxProofSize)
	sums := newSumdbStore(t, maxProofSize)
	for n := uint64(0); n <= maxProofSize; n++ {
		t.Run("size2="+strconv.Itoa(int(n)), func(t *testing.T) {
			for m := uint64(0); m <= n; m++ {
				p, err := tlog.ConsistencyProof(m, n, f.reader(n))
				if err != nil {
					t.Fatalf("ConsistencyProof(%d, %d): %v", m, n, err)
				}
				if p == nil {
					t.Errorf("ConsistencyProof(%d, %d) = nil, want a non-nil slice", m, n)
				}
				if m == 0 {
					if len(p) != 0 {
						t.Errorf("ConsistencyProof(0, %d) = %v, want empty", n, p)
					}
					if err := tlog.VerifyConsistency(0, n, nil, tlog.EmptyRoot, f.roots[n]); err != nil {
						t.Errorf("VerifyConsistency(0, %d, nil): %v", n, err)
					}
					if err := tlog.VerifyConsistency(0, n, p, tlog.EmptyRoot, f.roots[n]); err != nil {
						t.Errorf("VerifyConsistency(0, %d, %v): %v", n, p, err)
					}
					continue
				}
				if want := f.ref.proof(int(m), int(n)); !slices.Equal(p, want) {
					t.Errorf("ConsistencyProof(%d, %d) = %v, want PROOF = %v", m, n, p, want)
				}
				sp, err := sumdb.ProveTree(int64(n), int64(m), sums)
				if err != nil {
					t.Fatalf("sumdb.ProveTree(%d, %d): %v", n, m, err)
				}
				if !slices.Equal(p, fromSumdb(sp)) {
					t.Errorf("ConsistencyProof(%d, %d) = %v, sumdb.ProveTree = %v", m, n, p, sp)
				}
				if err := tlog.VerifyConsistency(m, n, p, f.roots[m], f.roots[n]); err != nil {
					t.Errorf("VerifyConsistency(%d, %d): %v", m, n, err)
				}
				if err := sumdbCheckTree(m, n, p, f.roots[m], f.roots[n]); err != nil {
					t.Errorf("sumdb.CheckTree(%d, %d): %v", m, n, err)
				}
			}
		})
	}
}

// TestProofReaderOnlyAsksForStoredNodes checks that building a proof for the
// tree of size n never reads a node that is incomplete at n (an ephemeral
// node, or one the log has not written yet), and asks for each node once.
func TestProofReaderOnlyAsksForStoredNodes(t *testing.T) {
	const maxSize = 70
	f := newFixture(t, maxSize)
	for n := uint64(1); n <= maxSize; n++ {
		for i := range n {
			r := countingReader(t, f.reader(n))
			if _, err := tlog.InclusionProof(i, n, r); err != nil {
				t.Errorf("InclusionProof(%d, %d): %v", i, n, err)
			}
			r = countingReader(t, f.reader(n))
			if _, err := tlog.ConsistencyProof(i+1, n, r); err != nil {
				t.Errorf("ConsistencyProof(%d, %d): %v", i+1, n, err)
			}
		}
	}
}

func countingReader(t *testing.T, r tlog.HashReader) tlog.HashReader {
	t.Helper()
	seen := map[tlog.NodeID]bool{}
	return tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		for _, id := range ids {
			if seen[id] {
				t.Errorf("node %d/%d read twice", id.Level, id.Index)
			}
			seen[id] = true
		}
		return r.ReadHashes(ids)
	})
}

func TestProofArgumentErrors(t *testing.T) {
	f := newFixture(t, 8)
	errRead := errors.New("disk on fire")
	failing := tlog.HashReaderFunc(func([]tlog.NodeID) ([]tlog.Hash, error) { return nil, errRead })
	short := tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		return make([]tlog.Hash, len(ids)-1), nil
	})
	long := tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		return make([]tlog.Hash, len(ids)+1), nil
	})
	tests := []struct {
		name    string
		build   func() ([]tlog.Hash, error)
		wantErr error // nil: any error
	}{
		{"inclusion index == size", func() ([]tlog.Hash, error) { return tlog.InclusionProof(8, 8, f.reader(8)) }, nil},
		{"inclusion index > size", func() ([]tlog.Hash, error) { return tlog.InclusionProof(9, 8, f.reader(8)) }, nil},
		{"inclusion size 0", func() ([]tlog.Hash, error) { return tlog.InclusionProof(0, 0, f.reader(8)) }, nil},
		{"inclusion max index", func() ([]tlog.Hash, error) { return tlog.InclusionProof(math.MaxUint64, 8, f.reader(8)) }, nil},
		{"inclusion reader error", func() ([]tlog.Hash, error) { return tlog.InclusionProof(3, 8, failing) }, errRead},
		{"inclusion reader short", func() ([]tlog.Hash, error) { return tlog.InclusionProof(3, 8, short) }, nil},
		{"inclusion reader long", func() ([]tlog.Hash, error) { return tlog.InclusionProof(3, 8, long) }, nil},
		{"inclusion beyond stored tree", func() ([]tlog.Hash, error) { return tlog.InclusionProof(3, 9, f.reader(8)) }, nil},
		{"consistency size1 > size2", func() ([]tlog.Hash, error) { return tlog.ConsistencyProof(5, 4, f.reader(8)) }, nil},
		{"consistency 1 > 0", func() ([]tlog.Hash, error) { return tlog.ConsistencyProof(1, 0, f.reader(8)) }, nil},
		{"consistency reader error", func() ([]tlog.Hash, error) { return tlog.ConsistencyProof(3, 8, failing) }, errRead},
		{"consistency reader short", func() ([]tlog.Hash, error) { return tlog.ConsistencyProof(3, 8, short) }, nil},
		{"consistency reader long", func() ([]tlog.Hash, error) { return tlog.ConsistencyProof(3, 8, long) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.build()
			if err == nil {
				t.Fatalf("got proof %v, want an error", p)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			if p != nil {
				t.Errorf("got proof %v with error %v", p, err)
			}
		})
	}
}

// flipped returns a copy of p with byte b of hash j inverted.
func flipped(p []tlog.Hash, j, b int) []tlog.Hash {
	q := slices.Clone(p)
	q[j][b] ^= 0xff
	return q
}

// bytePositions returns the byte positions to flip in each proof hash: all
// of them in trees of up to 24 leaves, and three (first, last and one that
// moves with j and n) in larger ones, to keep the test fast.
func bytePositions(n uint64, j int) []int {
	if n <= 24 {
		all := make([]int, tlog.HashSize)
		for i := range all {
			all[i] = i
		}
		return all
	}
	return []int{0, tlog.HashSize - 1, (7*j + int(n)) % tlog.HashSize}
}

func flipHash(h tlog.Hash, b int) tlog.Hash {
	h[b] ^= 0xff
	return h
}

type inclusionCase struct {
	name  string
	index uint64
	size  uint64
	leaf  tlog.Hash
	proof []tlog.Hash
	root  tlog.Hash
	// mayHold is set for tampering that can, for some trees, produce another
	// true statement with its honest proof (for example a different size
	// paired with that size's root); such a case must fail unless the fixture
	// says it holds. All other cases must fail.
	mayHold bool
}

// inclusionTampers returns tampered variants of the valid inclusion proof p
// of leaf i in the tree of size n.
func inclusionTampers(f *fixture, i, n uint64, p []tlog.Hash, allIndexes bool) []inclusionCase {
	leaf, root := f.leaves[i], f.roots[n]
	var cs []inclusionCase
	add := func(c inclusionCase) { cs = append(cs, c) }
	for j := range p {
		for _, b := range bytePositions(n, j) {
			add(inclusionCase{fmt.Sprintf("flip proof[%d][%d]", j, b), i, n, leaf, flipped(p, j, b), root, false})
		}
	}
	if len(p) > 0 {
		add(inclusionCase{"drop last", i, n, leaf, p[:len(p)-1], root, false})
		add(inclusionCase{"drop first", i, n, leaf, p[1:], root, false})
		add(inclusionCase{"swap first two", i, n, leaf, swapped(p), root, false})
		add(inclusionCase{"nil proof", i, n, leaf, nil, root, false})
	}
	add(inclusionCase{"append zero hash", i, n, leaf, append(slices.Clone(p), tlog.Hash{}), root, false})
	add(inclusionCase{"append root", i, n, leaf, append(slices.Clone(p), root), root, false})
	add(inclusionCase{"prepend leaf", i, n, leaf, append([]tlog.Hash{leaf}, p...), root, false})
	add(inclusionCase{"flip root", i, n, leaf, p, flipHash(root, int(i)%tlog.HashSize), false})
	add(inclusionCase{"empty root", i, n, leaf, p, tlog.EmptyRoot, false})
	add(inclusionCase{"root of size-1", i, n, leaf, p, f.roots[n-1], false})
	add(inclusionCase{"flip leaf", i, n, flipHash(leaf, int(n)%tlog.HashSize), p, root, false})
	add(inclusionCase{"leaf hash without 0x00 prefix", i, n, sha256.Sum256(leafData(int(i))), p, root, false})
	if n > 1 {
		add(inclusionCase{"other leaf", i, n, f.leaves[(i+1)%n], p, root, false})
	}
	// Other indexes, in range and out of range.
	for k := range n {
		if k != i && (allIndexes || k+1 == i || k == i+1 || k == n-1 || k == 0) {
			add(inclusionCase{fmt.Sprintf("index %d", k), k, n, leaf, p, root, false})
		}
	}
	add(inclusionCase{"index = size", n, n, leaf, p, root, false})
	add(inclusionCase{"index max", math.MaxUint64, n, leaf, p, root, false})
	// Other sizes, each with its own true root.
	for _, m := range []uint64{n - 1, n + 1, 2 * n, n / 2} {
		if m != n && m < uint64(len(f.roots)) {
			add(inclusionCase{fmt.Sprintf("size %d with its root", m), i, m, leaf, p, f.roots[m], true})
		}
	}
	add(inclusionCase{"size 0", i, 0, leaf, p, tlog.EmptyRoot, false})
	add(inclusionCase{"size max", i, math.MaxUint64, leaf, p, root, false})
	return cs
}

func swapped(p []tlog.Hash) []tlog.Hash {
	q := slices.Clone(p)
	if len(q) > 1 {
		q[0], q[1] = q[1], q[0]
	} else {
		q[0] = flipHash(q[0], 0)
	}
	return q
}

// TestInclusionTamper checks that every tampering with a valid inclusion
// proof or its claim is rejected with ErrProof, by VerifyInclusion and by
// sumdb.CheckRecord alike, for every leaf of every tree up to 130 leaves.
func TestInclusionTamper(t *testing.T) {
	f := newFixture(t, maxProofSize)
	t.Parallel()
	total, holds := 0, 0
	for n := uint64(1); n <= maxProofSize; n++ {
		t.Run("size="+strconv.Itoa(int(n)), func(t *testing.T) {
			for i := range n {
				p, err := tlog.InclusionProof(i, n, f.reader(n))
				if err != nil {
					t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
				}
				for _, c := range inclusionTampers(f, i, n, p, n <= 40) {
					total++
					holds += checkInclusionCase(t, f, fmt.Sprintf("leaf %d size %d: %s", i, n, c.name), c)
				}
			}
		})
	}
	t.Logf("checked %d tampered inclusion proofs, %d of them true claims", total, holds)
}

// checkInclusionCase checks one case and returns 1 if its claim holds.
func checkInclusionCase(t *testing.T, f *fixture, name string, c inclusionCase) int {
	t.Helper()
	holds := f.inclusionHolds(c.index, c.size, c.leaf, c.proof, c.root)
	if holds && !c.mayHold {
		t.Fatalf("%s: test bug, tampered claim still holds", name)
	}
	err := tlog.VerifyInclusion(c.index, c.size, c.leaf, c.proof, c.root)
	serr := sumdbCheckRecord(c.index, c.size, c.leaf, c.proof, c.root)
	if holds {
		if err != nil || serr != nil {
			t.Errorf("%s: true claim rejected: %v (sumdb: %v)", name, err, serr)
		}
		return 1
	}
	if !errors.Is(err, tlog.ErrProof) {
		t.Errorf("%s: VerifyInclusion = %v, want ErrProof", name, err)
	}
	if serr == nil {
		t.Errorf("%s: sumdb.CheckRecord accepted it", name)
	}
	return 0
}

type consistencyCase struct {
	name         string
	size1, size2 uint64
	proof        []tlog.Hash
	root1, root2 tlog.Hash
	mayHold      bool // as in inclusionCase
}

// consistencyTampers returns tampered variants of the valid consistency
// proof p between sizes m and n (0 < m <= n).
func consistencyTampers(f *fixture, m, n uint64, p []tlog.Hash) []consistencyCase {
	r1, r2 := f.roots[m], f.roots[n]
	var cs []consistencyCase
	add := func(c consistencyCase) { cs = append(cs, c) }
	for j := range p {
		for _, b := range bytePositions(n, j) {
			add(consistencyCase{fmt.Sprintf("flip proof[%d][%d]", j, b), m, n, flipped(p, j, b), r1, r2, false})
		}
	}
	if len(p) > 0 {
		add(consistencyCase{"drop last", m, n, p[:len(p)-1], r1, r2, false})
		add(consistencyCase{"drop first", m, n, p[1:], r1, r2, false})
		add(consistencyCase{"swap first two", m, n, swapped(p), r1, r2, false})
		add(consistencyCase{"nil proof", m, n, nil, r1, r2, false})
	}
	add(consistencyCase{"append zero hash", m, n, append(slices.Clone(p), tlog.Hash{}), r1, r2, false})
	add(consistencyCase{"append root2", m, n, append(slices.Clone(p), r2), r1, r2, false})
	add(consistencyCase{"prepend root1", m, n, append([]tlog.Hash{r1}, p...), r1, r2, false})
	add(consistencyCase{"flip root1", m, n, p, flipHash(r1, int(n)%tlog.HashSize), r2, false})
	add(consistencyCase{"flip root2", m, n, p, r1, flipHash(r2, int(m)%tlog.HashSize), false})
	add(consistencyCase{"root1 empty", m, n, p, tlog.EmptyRoot, r2, false})
	add(consistencyCase{"roots swapped", m, n, p, r2, r1, m == n})
	if m < n {
		add(consistencyCase{"sizes swapped", n, m, p, r2, r1, false})
	}
	// Other sizes, each with its own true root.
	for _, m2 := range []uint64{0, m - 1, m + 1, 2 * m, n} {
		if m2 != m && m2 <= n {
			add(consistencyCase{fmt.Sprintf("size1 %d with its root", m2), m2, n, p, f.roots[m2], r2, true})
		}
	}
	for _, n2 := range []uint64{m, n - 1, n + 1, 2 * n} {
		if n2 != n && n2 >= m && n2 < uint64(len(f.roots)) {
			add(consistencyCase{fmt.Sprintf("size2 %d with its root", n2), m, n2, p, r1, f.roots[n2], true})
		}
	}
	add(consistencyCase{"size1 0 with root1", 0, n, p, r1, r2, false})
	add(consistencyCase{"size2 max", m, math.MaxUint64, p, r1, r2, false})
	add(consistencyCase{"size1 max", math.MaxUint64, n, p, r1, r2, false})
	return cs
}

// TestConsistencyTamper checks that every tampering with a valid
// consistency proof or its claim is rejected with ErrProof, by
// VerifyConsistency and by sumdb.CheckTree alike, for every pair of sizes
// 1 <= m <= n <= 130.
func TestConsistencyTamper(t *testing.T) {
	f := newFixture(t, maxProofSize)
	t.Parallel()
	total, holds := 0, 0
	for n := uint64(1); n <= maxProofSize; n++ {
		t.Run("size2="+strconv.Itoa(int(n)), func(t *testing.T) {
			for m := uint64(1); m <= n; m++ {
				p, err := tlog.ConsistencyProof(m, n, f.reader(n))
				if err != nil {
					t.Fatalf("ConsistencyProof(%d, %d): %v", m, n, err)
				}
				for _, c := range consistencyTampers(f, m, n, p) {
					total++
					holds += checkConsistencyCase(t, f, fmt.Sprintf("sizes %d→%d: %s", m, n, c.name), c)
				}
			}
		})
	}
	t.Logf("checked %d tampered consistency proofs, %d of them true claims", total, holds)
}

// checkConsistencyCase checks one case and returns 1 if its claim holds.
func checkConsistencyCase(t *testing.T, f *fixture, name string, c consistencyCase) int {
	t.Helper()
	holds := f.consistencyHolds(c.size1, c.size2, c.proof, c.root1, c.root2)
	if holds && !c.mayHold {
		t.Fatalf("%s: test bug, tampered claim still holds", name)
	}
	err := tlog.VerifyConsistency(c.size1, c.size2, c.proof, c.root1, c.root2)
	var serr error
	if c.size1 > 0 { // sumdb has no size 0
		serr = sumdbCheckTree(c.size1, c.size2, c.proof, c.root1, c.root2)
	} else if !holds {
		serr = errors.New("not checked")
	}
	if holds {
		if err != nil || serr != nil {
			t.Errorf("%s: true claim rejected: %v (sumdb: %v)", name, err, serr)
		}
		return 1
	}
	if !errors.Is(err, tlog.ErrProof) {
		t.Errorf("%s: VerifyConsistency = %v, want ErrProof", name, err)
	}
	if serr == nil {
		t.Errorf("%s: sumdb.CheckTree accepted it", name)
	}
	return 0
}

// TestVerifyConsistencyFromEmpty covers size 0, which tlog handles itself:
// the only proof from the empty tree is the empty proof, and the only root
// of the empty tree is EmptyRoot.
func TestVerifyConsistencyFromEmpty(t *testing.T) {
	f := newFixture(t, 5)
	other := f.leaves[0]
	tests := []struct {
		name         string
		size1, size2 uint64
		proof        []tlog.Hash
		root1, root2 tlog.Hash
		ok           bool
	}{
		{"0→5 nil proof", 0, 5, nil, tlog.EmptyRoot, f.roots[5], true},
		{"0→5 empty proof", 0, 5, []tlog.Hash{}, tlog.EmptyRoot, f.roots[5], true},
		{"0→1", 0, 1, nil, tlog.EmptyRoot, f.roots[1], true},
		{"0→0", 0, 0, nil, tlog.EmptyRoot, tlog.EmptyRoot, true},
		{"0→5 one-hash proof", 0, 5, []tlog.Hash{f.roots[5]}, tlog.EmptyRoot, f.roots[5], false},
		{"0→5 zero-hash proof", 0, 5, []tlog.Hash{{}}, tlog.EmptyRoot, f.roots[5], false},
		{"0→5 root1 not empty", 0, 5, nil, other, f.roots[5], false},
		{"0→5 root1 zero", 0, 5, nil, tlog.Hash{}, f.roots[5], false},
		{"1→0", 1, 0, nil, f.roots[1], tlog.EmptyRoot, false},
		{"5→5 same root", 5, 5, nil, f.roots[5], f.roots[5], true},
		{"5→5 other root", 5, 5, nil, f.roots[5], f.roots[4], false},
		{"5→5 non-empty proof", 5, 5, []tlog.Hash{f.roots[5]}, f.roots[5], f.roots[5], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tlog.VerifyConsistency(tt.size1, tt.size2, tt.proof, tt.root1, tt.root2)
			if tt.ok {
				if err != nil {
					t.Errorf("VerifyConsistency: %v", err)
				}
				return
			}
			if !errors.Is(err, tlog.ErrProof) {
				t.Errorf("VerifyConsistency = %v, want ErrProof", err)
			}
		})
	}
}

// TestInclusionDoesNotBindSize documents an RFC 6962 property, not a tlog
// bug: an inclusion proof binds the leaf to a root, and only the signed
// checkpoint binds that root to a size. Leaf 0 of the 3-leaf tree has the
// proof [d1, d2]; the verifier for leaf 0 of a 4-leaf tree does the same
// computation (H(H(d0, d1), x)), so it accepts the 3-leaf root under the
// claim "size 4". With the true 4-leaf root the claim fails.
func TestInclusionDoesNotBindSize(t *testing.T) {
	f := newFixture(t, 4)
	p, err := tlog.InclusionProof(0, 3, f.reader(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.VerifyInclusion(0, 4, f.leaves[0], p, f.roots[3]); err != nil {
		t.Errorf("VerifyInclusion(0, 4, root of size 3) = %v; the RFC 6962 verifier accepts this", err)
	}
	if err := sumdbCheckRecord(0, 4, f.leaves[0], p, f.roots[3]); err != nil {
		t.Errorf("sumdb.CheckRecord(0, 4, root of size 3) = %v; the RFC 6962 verifier accepts this", err)
	}
	if err := tlog.VerifyInclusion(0, 4, f.leaves[0], p, f.roots[4]); !errors.Is(err, tlog.ErrProof) {
		t.Errorf("VerifyInclusion(0, 4, root of size 4) = %v, want ErrProof", err)
	}
}
