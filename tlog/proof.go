package tlog

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// NodeID names a node of the tree: Level 0 holds leaf hashes, and node
// (L, i) is the root of the perfect subtree over leaves [i·2^L, (i+1)·2^L).
type NodeID = compact.NodeID

// HashReader reads the hashes of perfect subtrees, which are the only nodes
// a log stores. ReadHashes returns one hash per ID, in the same order.
type HashReader interface {
	ReadHashes(ids []NodeID) ([]Hash, error)
}

// HashReaderFunc adapts a function to a HashReader.
type HashReaderFunc func(ids []NodeID) ([]Hash, error)

// ReadHashes calls f(ids).
func (f HashReaderFunc) ReadHashes(ids []NodeID) ([]Hash, error) { return f(ids) }

// ErrProof is returned when a proof does not verify.
var ErrProof = errors.New("tlog: proof does not verify")

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the
// tree of the given size, reading perfect-subtree hashes from r.
func InclusionProof(index, size uint64, r HashReader) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("tlog: index %d is not below tree size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("tlog: inclusion proof nodes: %w", err)
	}
	return rehash(nodes, r)
}

// ConsistencyProof returns the RFC 6962 consistency proof between trees of
// size1 and size2, reading perfect-subtree hashes from r. The proof from the
// empty tree, and between equal sizes, is empty.
func ConsistencyProof(size1, size2 uint64, r HashReader) ([]Hash, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("tlog: first tree size %d exceeds second tree size %d", size1, size2)
	}
	if size1 == 0 || size1 == size2 {
		return []Hash{}, nil
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("tlog: consistency proof nodes: %w", err)
	}
	return rehash(nodes, r)
}

func rehash(nodes proof.Nodes, r HashReader) ([]Hash, error) {
	hashes, err := r.ReadHashes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	if len(hashes) != len(nodes.IDs) {
		return nil, fmt.Errorf("tlog: hash reader returned %d hashes for %d nodes", len(hashes), len(nodes.IDs))
	}
	// Fold the right-border nodes into the ephemeral node they stand for,
	// from the lowest level up (the order proof.Nodes lists them in).
	_, begin, end := nodes.Ephem()
	out := make([]Hash, 0, len(hashes))
	for i := 0; i < len(hashes); i++ {
		h := hashes[i]
		if i == begin && end > begin {
			for i++; i < end; i++ {
				h = NodeHash(hashes[i], h)
			}
			i--
		}
		out = append(out, h)
	}
	return out, nil
}

// VerifyInclusion checks that leaf is at index in the tree of the given size
// and root.
func VerifyInclusion(index, size uint64, leaf Hash, p []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: index %d is not below tree size %d", ErrProof, index, size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], byteSlices(p), root[:]); err != nil {
		return fmt.Errorf("%w: inclusion of leaf %d in tree of size %d: %w", ErrProof, index, size, readable(err))
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 and root1 is a prefix of the
// tree of size2 and root2. Every tree is consistent with the empty tree; the
// proof from size 0 must be empty.
func VerifyConsistency(size1, size2 uint64, p []Hash, root1, root2 Hash) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: first tree size %d exceeds second tree size %d", ErrProof, size1, size2)
	case size1 == 0:
		if len(p) != 0 {
			return fmt.Errorf("%w: proof from the empty tree must be empty, got %d hashes", ErrProof, len(p))
		}
		if root1 != EmptyRoot || (size2 == 0 && root2 != EmptyRoot) {
			return fmt.Errorf("%w: root of the empty tree is not SHA-256(\"\")", ErrProof)
		}
		return nil
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, byteSlices(p), root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: consistency of tree sizes %d and %d: %w", ErrProof, size1, size2, readable(err))
	}
	return nil
}

// readable rewrites merkle's root mismatch, which prints roots as decimal
// byte lists over several lines, on one line in hex.
func readable(err error) error {
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return fmt.Errorf("the proof leads to root %x, not to the signed root %x", rm.CalculatedRoot, rm.ExpectedRoot)
	}
	return err
}

func byteSlices(p []Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
