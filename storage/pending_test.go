package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

func TestHashRun(t *testing.T) {
	key := func(i int) tlog.Hash { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	r := newHashRun(1000, 4) // grows several times
	const n = 5000
	for i := range n {
		if i%100 == 7 {
			r.add(tlog.Hash{}) // a leaf without an entry
			continue
		}
		r.add(key(i))
	}
	if r.end() != 1000+n {
		t.Fatalf("end %d", r.end())
	}
	for i := range n {
		got, ok := r.find(key(i))
		if i%100 == 7 {
			if ok {
				t.Fatalf("unindexed leaf %d found at %d", i, got)
			}
			continue
		}
		if !ok || got != uint64(1000+i) {
			t.Fatalf("find(key %d) = %d, %v", i, got, ok)
		}
	}
	for i := n; i < 2*n; i++ {
		if got, ok := r.find(key(i)); ok {
			t.Fatalf("absent key %d found at %d", i, got)
		}
	}
	// Keys that share the slot start and the fingerprint but differ later
	// are still told apart.
	a, b := key(1), key(1)
	b[31] ^= 1
	r2 := newHashRun(0, 2)
	r2.add(a)
	if _, ok := r2.find(b); ok {
		t.Fatal("a near-collision was found")
	}
	if _, ok := (*hashRun)(nil).find(a); ok {
		t.Fatal("nil run found a hash")
	}
}
