package tlog

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// Tree is the right edge of a log's Merkle tree over leaves [0, Size): the
// hashes of the perfect subtrees that cover it. It is enough to append leaves
// and compute the root; it is not safe for concurrent use. Make one with
// NewTree (NewTree(0, nil) for the empty tree); the zero Tree is not usable.
type Tree struct {
	r *compact.Range
}

// TreeNodes returns the IDs of the perfect subtrees that cover [0, size), left
// to right: the nodes NewTree needs.
func TreeNodes(size uint64) []NodeID {
	return compact.RangeNodes(0, size, nil)
}

// NewTree restores the tree of the given size from the hashes of
// TreeNodes(size), in the same order.
func NewTree(size uint64, hashes []Hash) (*Tree, error) {
	f := &compact.RangeFactory{Hash: hashChildren}
	// Copy: the range keeps the slices it is given.
	r, err := f.NewRange(0, size, slices(append([]Hash(nil), hashes...)))
	if err != nil {
		return nil, fmt.Errorf("tlog: restore tree of size %d: %w", size, err)
	}
	return &Tree{r: r}, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 { return t.r.End() }

// Append adds a leaf hash. visit, if not nil, is called for the leaf and for
// every perfect subtree the leaf completes, lowest level first: exactly the
// nodes a log stores. Right-border (ephemeral) nodes are never reported.
func (t *Tree) Append(leaf Hash, visit func(id NodeID, h Hash)) {
	var fn compact.VisitFn
	if visit != nil {
		fn = func(id compact.NodeID, h []byte) { visit(id, Hash(h)) }
	}
	// Append only fails on a corrupted range, which NewTree rules out.
	if err := t.r.Append(leaf[:], fn); err != nil {
		panic(fmt.Sprintf("tlog: append to compact range: %v", err))
	}
}

// Root returns the RFC 6962 root hash; EmptyRoot for the empty tree.
func (t *Tree) Root() Hash {
	root, err := t.r.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("tlog: root of compact range: %v", err))
	}
	if root == nil {
		return EmptyRoot
	}
	return Hash(root)
}
