package tlog_test

import (
	"errors"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// The only root of a tree of size 0 is EmptyRoot, on both sides.
func TestConsistencyZeroZeroChecksRoot2(t *testing.T) {
	bogus := tlog.LeafHash([]byte("not the empty tree"))
	err := tlog.VerifyConsistency(0, 0, nil, tlog.EmptyRoot, bogus)
	if !errors.Is(err, tlog.ErrProof) {
		t.Errorf("VerifyConsistency(0, 0, nil, EmptyRoot, %v) = %v, want ErrProof", bogus, err)
	}
}

// NewTree must not keep pointers into the caller's hashes: a caller that
// reuses its buffer must not change the tree.
func TestNewTreeCopiesHashes(t *testing.T) {
	f := newFixture(t, 7)
	hashes, err := f.reader(7).ReadHashes(tlog.TreeNodes(7))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := tlog.NewTree(7, hashes)
	if err != nil {
		t.Fatal(err)
	}
	clear(hashes) // the caller reuses its buffer
	if got := tree.Root(); got != f.roots[7] {
		t.Errorf("Root() after the caller cleared its slice = %v, want %v", got, f.roots[7])
	}
	tree.Append(f.leaves[0], nil)
	// 8 leaves: d0..d6 then d0 again.
	want := newFixtureFromData(t, [][]byte{leafData(0), leafData(1), leafData(2), leafData(3), leafData(4), leafData(5), leafData(6), leafData(0)}).roots[8]
	if got := tree.Root(); got != want {
		t.Errorf("Root() after one more append = %v, want %v", got, want)
	}
}
