package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

func TestDedupFilterFalsePositives(t *testing.T) {
	var f dedupFilter
	key := func(i uint64) tlog.Hash { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, i)) }
	const n = 1_500_000 // four segments: 64Ki, 256Ki, 1Mi, and part of 4Mi
	// Add in sorted order, as Open does when it scans the stored index.
	keys := make([]tlog.Hash, n)
	for i := range keys {
		keys[i] = key(uint64(i))
	}
	slices.SortFunc(keys, func(a, b tlog.Hash) int { return bytes.Compare(a[:], b[:]) })
	for i := range keys {
		f.add(&keys[i])
	}
	for i := range uint64(n) {
		if h := key(i); !f.mayContain(&h) {
			t.Fatalf("added key %d is missing", i)
		}
	}
	fp := 0
	const probes = 1_000_000
	for i := range uint64(probes) {
		if h := key(n + i); f.mayContain(&h) {
			fp++
		}
	}
	rate := float64(fp) / probes
	t.Logf("%d segments, %d bytes, false-positive rate %.4f%%", len(f.segs), f.sizeBytes(), 100*rate)
	if rate > 0.005 {
		t.Fatalf("false-positive rate %.4f%% is above 0.5%%", 100*rate)
	}
}
