package tlog

import (
	"fmt"
	"math/bits"
	"slices"
)

// leftSiblings returns the hashes of an inclusion proof for leaf index in a
// tree of the given size that lie left of the leaf's path, as a compact
// range of [0, index): largest (leftmost) first. The proof must already be
// verified.
func leftSiblings(index, size uint64, p []Hash) []Hash {
	inner := bits.Len64(index ^ (size - 1))
	var left []Hash
	for l := 0; l < inner && l < len(p); l++ {
		if index>>l&1 == 1 {
			left = append(left, p[l])
		}
	}
	if inner < len(p) {
		left = append(left, p[inner:]...) // the left border, all to the left
	}
	slices.Reverse(left)
	return left
}

// VerifyRange checks that leaves are the consecutive leaves from index start
// in the tree of the given size and root, using the inclusion proofs of the
// first and of the last of them (the same proof twice for one leaf). It
// needs two proofs however long the range: the first proof fixes the
// subtrees left of the range, the leaves are hashed into them, and the
// result must be exactly what the second proof shows left of the last leaf.
func VerifyRange(start uint64, leaves []Hash, size uint64, first, last []Hash, root Hash) error {
	if len(leaves) == 0 {
		return fmt.Errorf("%w: empty range", ErrProof)
	}
	end := start + uint64(len(leaves))
	if end > size || end < start {
		return fmt.Errorf("%w: range [%d, %d) is not inside a tree of size %d", ErrProof, start, end, size)
	}
	if err := VerifyInclusion(start, size, leaves[0], first, root); err != nil {
		return fmt.Errorf("first leaf of the range: %w", err)
	}
	if err := VerifyInclusion(end-1, size, leaves[len(leaves)-1], last, root); err != nil {
		return fmt.Errorf("last leaf of the range: %w", err)
	}
	if len(leaves) == 1 {
		return nil
	}
	t, err := NewTree(start, leftSiblings(start, size, first))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProof, err)
	}
	for _, l := range leaves[:len(leaves)-1] {
		t.Append(l, nil)
	}
	if !slices.Equal(t.Hashes(), leftSiblings(end-1, size, last)) {
		return fmt.Errorf("%w: leaves %d to %d are not the tree's", ErrProof, start, end-1)
	}
	return nil
}
