package tlog_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// benchSize is the size of the tree the proof benchmarks read from.
const benchSize = 1 << 16

// benchStore builds a tree of n leaves and returns its leaf hashes, root and
// every perfect-subtree hash, without the reference checks of newFixture.
func benchStore(b *testing.B, n int) ([]tlog.Hash, tlog.Hash, map[tlog.NodeID]tlog.Hash) {
	b.Helper()
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		b.Fatal(err)
	}
	nodes := make(map[tlog.NodeID]tlog.Hash, 2*n)
	leaves := make([]tlog.Hash, n)
	for i := range leaves {
		leaves[i] = tlog.LeafHash(leafData(i))
		tree.Append(leaves[i], func(id tlog.NodeID, h tlog.Hash) { nodes[id] = h })
	}
	return leaves, tree.Root(), nodes
}

func mapReader(nodes map[tlog.NodeID]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			out[i] = nodes[id]
		}
		return out, nil
	})
}

func BenchmarkLeafHash(b *testing.B) {
	entry, err := tlog.Entry{Time: 1700000000123, Commitment: tlog.Commit(make([]byte, 16), []byte("payload"))}.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(entry)))
	var h tlog.Hash
	for b.Loop() {
		h = tlog.LeafHash(entry)
	}
	if h == (tlog.Hash{}) {
		b.Fatal("zero hash")
	}
}

func BenchmarkCommit(b *testing.B) {
	salt := bytes.Repeat([]byte{0x5a}, tlog.SaltSize)
	for _, size := range []int{256, 4096} {
		b.Run(fmt.Sprintf("payload=%dB", size), func(b *testing.B) {
			payload := bytes.Repeat([]byte{'p'}, size)
			b.SetBytes(int64(size))
			var h tlog.Hash
			for b.Loop() {
				h = tlog.Commit(salt, payload)
			}
			if h == (tlog.Hash{}) {
				b.Fatal("zero hash")
			}
		})
	}
}

func BenchmarkEntryAppendBinary(b *testing.B) {
	e := tlog.Entry{Time: 1700000000123, Commitment: tlog.Commit(make([]byte, 16), []byte("payload"))}
	buf := make([]byte, 0, tlog.EntrySize)
	for b.Loop() {
		buf = e.AppendBinary(buf[:0])
	}
	if len(buf) != tlog.EntrySize {
		b.Fatalf("entry has %d bytes", len(buf))
	}
}

func BenchmarkTreeAppend(b *testing.B) {
	leaf := tlog.LeafHash([]byte("leaf"))
	b.Run("visit=nil", func(b *testing.B) {
		tree, err := tlog.NewTree(0, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			tree.Append(leaf, nil)
		}
	})
	b.Run("visit=count", func(b *testing.B) {
		tree, err := tlog.NewTree(0, nil)
		if err != nil {
			b.Fatal(err)
		}
		visited := 0
		for b.Loop() {
			tree.Append(leaf, func(tlog.NodeID, tlog.Hash) { visited++ })
		}
		if visited < b.N {
			b.Fatalf("visited %d nodes for %d appends", visited, b.N)
		}
	})
	b.Run("with-root", func(b *testing.B) {
		tree, err := tlog.NewTree(0, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			tree.Append(leaf, nil)
			_ = tree.Root()
		}
	})
}

func BenchmarkInclusionProof(b *testing.B) {
	_, _, nodes := benchStore(b, benchSize)
	r := mapReader(nodes)
	for i := uint64(0); b.Loop(); i++ {
		p, err := tlog.InclusionProof((i*7919)%(benchSize-1), benchSize-1, r)
		if err != nil || len(p) == 0 {
			b.Fatalf("InclusionProof: %v, %d hashes", err, len(p))
		}
	}
}

func BenchmarkConsistencyProof(b *testing.B) {
	_, _, nodes := benchStore(b, benchSize)
	r := mapReader(nodes)
	for i := uint64(0); b.Loop(); i++ {
		p, err := tlog.ConsistencyProof(1+(i*7919)%(benchSize-2), benchSize-1, r)
		if err != nil || len(p) == 0 {
			b.Fatalf("ConsistencyProof: %v, %d hashes", err, len(p))
		}
	}
}

func BenchmarkVerifyInclusion(b *testing.B) {
	leaves, root, nodes := benchStore(b, benchSize)
	const index = 12345
	p, err := tlog.InclusionProof(index, benchSize, mapReader(nodes))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tlog.VerifyInclusion(index, benchSize, leaves[index], p, root); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyConsistency(b *testing.B) {
	_, root2, nodes := benchStore(b, benchSize)
	const size1 = 12345
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range size1 {
		tree.Append(tlog.LeafHash(leafData(i)), nil)
	}
	root1 := tree.Root()
	p, err := tlog.ConsistencyProof(size1, benchSize, mapReader(nodes))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tlog.VerifyConsistency(size1, benchSize, p, root1, root2); err != nil {
			b.Fatal(err)
		}
	}
}
