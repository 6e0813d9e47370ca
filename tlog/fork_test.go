package tlog_test

import (
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// TestPrefixRootAndConsistencyRoots checks, for every pair of sizes up to
// 40, that both recompute the honest roots, and that on a forked tree (one
// leaf changed) they recompute the fork's roots: what makes evidence of a
// fork self-proving.
func TestPrefixRootAndConsistencyRoots(t *testing.T) {
	const n = 40
	f := newFixture(t, n)
	for size2 := uint64(2); size2 <= n; size2++ {
		r := f.reader(size2)
		for size1 := uint64(1); size1 < size2; size1++ {
			p, err := tlog.InclusionProof(size1, size2, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tlog.PrefixRoot(size1, size2, f.leaves[size1], p, f.roots[size2])
			if err != nil || got != f.roots[size1] {
				t.Fatalf("PrefixRoot(%d, %d) = %v, %v; want the root of size %d", size1, size2, got, err, size1)
			}
			cp, err := tlog.ConsistencyProof(size1, size2, r)
			if err != nil {
				t.Fatal(err)
			}
			if tlog.IsPowerOfTwo(size1) {
				cp = append([]tlog.Hash{f.roots[size1]}, cp...)
			}
			r1, r2, err := tlog.ConsistencyRoots(size1, size2, cp)
			if err != nil || r1 != f.roots[size1] || r2 != f.roots[size2] {
				t.Fatalf("ConsistencyRoots(%d, %d): %v", size1, size2, err)
			}
			if _, _, err := tlog.ConsistencyRoots(size1, size2, cp[:len(cp)-1]); err == nil {
				t.Fatalf("ConsistencyRoots(%d, %d) of a short proof", size1, size2)
			}
		}
	}

	// A fork: leaf 3 differs. Every size above 3 has another root.
	data := make([][]byte, n)
	for i := range data {
		data[i] = leafData(i)
	}
	data[3] = []byte("a rewritten record")
	forked := newFixtureFromData(t, data)
	for size2 := uint64(5); size2 <= n; size2++ {
		r := forked.reader(size2)
		for size1 := uint64(4); size1 < size2; size1++ {
			p, _ := tlog.InclusionProof(size1, size2, r)
			got, err := tlog.PrefixRoot(size1, size2, forked.leaves[size1], p, forked.roots[size2])
			if err != nil || got == f.roots[size1] {
				t.Fatalf("fork %d → %d: prefix root %v, %v", size1, size2, got, err)
			}
			cp, _ := tlog.ConsistencyProof(size1, size2, r)
			if tlog.IsPowerOfTwo(size1) {
				cp = append([]tlog.Hash{forked.roots[size1]}, cp...)
			}
			r1, r2, err := tlog.ConsistencyRoots(size1, size2, cp)
			if err != nil || r2 != forked.roots[size2] || r1 == f.roots[size1] {
				t.Fatalf("fork %d → %d: consistency roots: %v", size1, size2, err)
			}
		}
	}
}
