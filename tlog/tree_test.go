package tlog_test

import (
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"testing"

	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// The standard 8-leaf test tree of Certificate Transparency, as in
// github.com/transparency-dev/merkle/testonly (LeafInputs, NodeHashes,
// RootHashes), copied here as literals.
var katLeafHex = []string{
	"",
	"00",
	"10",
	"2021",
	"3031",
	"40414243",
	"5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
}

// katRoots[n] is the root of the tree of the first n leaves.
var katRoots = []string{
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

// katNodes[level][index] is the hash of every perfect subtree of the 8-leaf
// tree.
var katNodes = [][]string{{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
	"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
}, {
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
}, {
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}, {
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}}

func katLeaves(tb testing.TB) [][]byte {
	tb.Helper()
	out := make([][]byte, len(katLeafHex))
	for i, s := range katLeafHex {
		out[i] = mustHex(tb, s)
	}
	return out
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustHash(tb testing.TB, s string) tlog.Hash {
	tb.Helper()
	h, err := tlog.ParseHash(mustHex(tb, s))
	if err != nil {
		tb.Fatalf("ParseHash(%s): %v", s, err)
	}
	return h
}

func TestEmptyRoot(t *testing.T) {
	const want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256("")
	if got := tlog.EmptyRoot.String(); got != want {
		t.Errorf("EmptyRoot = %s, want %s", got, want)
	}
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		t.Fatalf("NewTree(0, nil): %v", err)
	}
	if got := tree.Root().String(); got != want {
		t.Errorf("empty Tree.Root() = %s, want %s", got, want)
	}
	if got := tree.Size(); got != 0 {
		t.Errorf("empty Tree.Size() = %d, want 0", got)
	}
}

// TestKnownAnswers appends the 8 standard leaves one by one and checks the
// root at every size 0..8, and every perfect node the tree reports, against
// the hard-coded vectors.
func TestKnownAnswers(t *testing.T) {
	leaves := katLeaves(t)
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		t.Fatalf("NewTree(0, nil): %v", err)
	}
	got := map[tlog.NodeID]string{}
	roots := []string{tree.Root().String()}
	for _, d := range leaves {
		tree.Append(tlog.LeafHash(d), func(id tlog.NodeID, h tlog.Hash) { got[id] = h.String() })
		roots = append(roots, tree.Root().String())
	}
	for n, want := range katRoots {
		t.Run("root/size="+strconv.Itoa(n), func(t *testing.T) {
			if roots[n] != want {
				t.Errorf("root of the first %d leaves = %s, want %s", n, roots[n], want)
			}
		})
	}
	count := 0
	for level, hs := range katNodes {
		for index, want := range hs {
			count++
			id := tlog.NodeID{Level: uint(level), Index: uint64(index)}
			if got[id] != want {
				t.Errorf("node %d/%d = %q, want %s", level, index, got[id], want)
			}
		}
	}
	if len(got) != count {
		t.Errorf("tree reported %d nodes, want the %d perfect subtrees", len(got), count)
	}
	for i, d := range leaves {
		if got, want := tlog.LeafHash(d).String(), katNodes[0][i]; got != want {
			t.Errorf("LeafHash(%x) = %s, want %s", d, got, want)
		}
	}
	for level := 1; level < len(katNodes); level++ {
		for index, want := range katNodes[level] {
			l, r := mustHash(t, katNodes[level-1][2*index]), mustHash(t, katNodes[level-1][2*index+1])
			if got := tlog.NodeHash(l, r).String(); got != want {
				t.Errorf("NodeHash(children of %d/%d) = %s, want %s", level, index, got, want)
			}
		}
	}
}

func TestParseHash(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"31 bytes", make([]byte, 31), true},
		{"32 bytes", []byte("0123456789abcdef0123456789abcdef"), false},
		{"33 bytes", make([]byte, 33), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := tlog.ParseHash(tt.in)
			if tt.wantErr {
				if err == nil || !errors.Is(err, tlog.ErrHashSize) {
					t.Fatalf("ParseHash(%d bytes) = %v, %v; want ErrHashSize", len(tt.in), h, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHash: %v", err)
			}
			if string(h[:]) != string(tt.in) {
				t.Errorf("ParseHash(%q) = %q", tt.in, h[:])
			}
		})
	}
}

// TestTreeAgainstReference builds a tree of 130 leaves (newFixture checks
// every visitor call, size and root against the reference), then compares
// the roots with sumdb.TreeHash, and restores the tree at every size from the
// hashes of TreeNodes and keeps appending.
func TestTreeAgainstReference(t *testing.T) {
	const maxSize = 130
	f := newFixture(t, maxSize)
	sums := newSumdbStore(t, maxSize)
	for n := 0; n <= maxSize; n++ {
		if got, want := f.roots[n], f.ref.mth(0, n); got != want {
			t.Errorf("Root() at size %d = %v, want %v", n, got, want)
		}
		th, err := sumdb.TreeHash(int64(n), sums)
		if err != nil {
			t.Fatalf("sumdb.TreeHash(%d): %v", n, err)
		}
		if n > 0 && tlog.Hash(th) != f.roots[n] {
			t.Errorf("sumdb.TreeHash(%d) = %v, Root() = %v", n, th, f.roots[n])
		}
	}
	// Every perfect subtree of the 130-leaf tree was reported exactly once:
	// 130 leaves, 65 at level 1, 32, 16, 8, 4, 2, 1.
	if got, want := len(f.nodes), 130+65+32+16+8+4+2+1; got != want {
		t.Errorf("stored %d nodes, want %d", got, want)
	}

	for n := uint64(0); n <= maxSize; n++ {
		t.Run("restore/size="+strconv.Itoa(int(n)), func(t *testing.T) {
			ids := tlog.TreeNodes(n)
			// The nodes are perfect subtrees covering [0, n) left to right,
			// strictly decreasing in level: one per bit of n.
			var end uint64
			for i, id := range ids {
				lo, hi := nodeRange(id)
				if uint64(lo) != end {
					t.Fatalf("TreeNodes(%d)[%d] = %d/%d starts at %d, want %d", n, i, id.Level, id.Index, lo, end)
				}
				if i > 0 && id.Level >= ids[i-1].Level {
					t.Fatalf("TreeNodes(%d) levels not decreasing: %v", n, ids)
				}
				end = uint64(hi)
			}
			if end != n {
				t.Fatalf("TreeNodes(%d) covers [0, %d)", n, end)
			}
			hashes, err := f.reader(n).ReadHashes(ids)
			if err != nil {
				t.Fatalf("read TreeNodes(%d): %v", n, err)
			}
			tree, err := tlog.NewTree(n, hashes)
			if err != nil {
				t.Fatalf("NewTree(%d): %v", n, err)
			}
			if tree.Size() != n {
				t.Errorf("restored Size() = %d, want %d", tree.Size(), n)
			}
			if got := tree.Root(); got != f.roots[n] {
				t.Errorf("restored Root() = %v, want %v", got, f.roots[n])
			}
			for k := n; k < min(n+20, maxSize); k++ {
				var visited []tlog.NodeID
				tree.Append(f.leaves[k], func(id tlog.NodeID, h tlog.Hash) {
					visited = append(visited, id)
					if h != f.nodes[id] {
						t.Errorf("restored at %d, append leaf %d: node %d/%d = %v, want %v", n, k, id.Level, id.Index, h, f.nodes[id])
					}
				})
				if want := wantVisited(k); !slices.Equal(visited, want) {
					t.Errorf("restored at %d, append leaf %d: visited %v, want %v", n, k, visited, want)
				}
				if got := tree.Root(); got != f.roots[k+1] {
					t.Errorf("restored at %d, Root() at size %d = %v, want %v", n, k+1, got, f.roots[k+1])
				}
			}
		})
	}
}

func TestTreeAppendNilVisitor(t *testing.T) {
	f := newFixture(t, 20)
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range f.leaves {
		tree.Append(leaf, nil)
		if got := tree.Root(); got != f.roots[i+1] {
			t.Fatalf("Root() at size %d = %v, want %v", i+1, got, f.roots[i+1])
		}
	}
}

func TestNewTreeRejectsWrongHashCount(t *testing.T) {
	h := tlog.LeafHash(nil)
	tests := []struct {
		size   uint64
		hashes []tlog.Hash
	}{
		{0, []tlog.Hash{h}},
		{1, nil},
		{3, []tlog.Hash{h}},          // needs 2
		{4, []tlog.Hash{h, h}},       // needs 1
		{7, []tlog.Hash{h, h}},       // needs 3
		{8, []tlog.Hash{h, h, h}},    // needs 1
		{1 << 40, []tlog.Hash{h, h}}, // needs 1
	}
	for _, tt := range tests {
		t.Run("size="+strconv.Itoa(int(tt.size)), func(t *testing.T) {
			if tree, err := tlog.NewTree(tt.size, tt.hashes); err == nil {
				t.Errorf("NewTree(%d, %d hashes) = size %d, nil; want an error", tt.size, len(tt.hashes), tree.Size())
			}
		})
	}
}
