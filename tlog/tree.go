package tlog

import (
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
)

// Tree is the right edge of a log's Merkle tree over leaves [0, Size): the
// hashes of the perfect subtrees that cover it (a compact range), largest
// first. It is enough to append leaves and compute the root; it is not safe
// for concurrent use. Make one with NewTree (NewTree(0, nil) for the empty
// tree); the zero Tree is not usable.
type Tree struct {
	size   uint64
	hashes []Hash // one per set bit of size, highest level first
}

// TreeNodes returns the IDs of the perfect subtrees that cover [0, size), left
// to right: the nodes NewTree needs.
func TreeNodes(size uint64) []NodeID {
	return compact.RangeNodes(0, size, nil)
}

// NewTree restores the tree of the given size from the hashes of
// TreeNodes(size), in the same order. It copies hashes.
func NewTree(size uint64, hashes []Hash) (*Tree, error) {
	if want := bits.OnesCount64(size); len(hashes) != want {
		return nil, fmt.Errorf("tlog: restore tree of size %d: got %d hashes, want %d", size, len(hashes), want)
	}
	return &Tree{size: size, hashes: append(make([]Hash, 0, 64), hashes...)}, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.size }

// Append adds a leaf hash. visit, if not nil, is called for the leaf and for
// every perfect subtree the leaf completes, lowest level first: exactly the
// nodes a log stores. Right-border (ephemeral) nodes are never reported.
func (t *Tree) Append(leaf Hash, visit func(id NodeID, h Hash)) {
	h := leaf
	if visit != nil {
		visit(NodeID{Level: 0, Index: t.size}, h)
	}
	// Each trailing one bit of the old size is a perfect subtree of the same
	// height as the one being built: merge them.
	for level, n := uint(1), t.size; n&1 == 1; level, n = level+1, n>>1 {
		h = NodeHash(t.hashes[len(t.hashes)-1], h)
		t.hashes = t.hashes[:len(t.hashes)-1]
		if visit != nil {
			visit(NodeID{Level: level, Index: n >> 1}, h)
		}
	}
	t.hashes = append(t.hashes, h)
	t.size++
}

// Root returns the RFC 6962 root hash; EmptyRoot for the empty tree.
func (t *Tree) Root() Hash {
	if len(t.hashes) == 0 {
		return EmptyRoot
	}
	h := t.hashes[len(t.hashes)-1]
	for i := len(t.hashes) - 2; i >= 0; i-- {
		h = NodeHash(t.hashes[i], h)
	}
	return h
}

// Hashes returns the compact range: the hashes of the perfect subtrees that
// cover [0, Size), largest (leftmost) first, as TreeNodes lists them.
func (t *Tree) Hashes() []Hash { return append([]Hash(nil), t.hashes...) }
