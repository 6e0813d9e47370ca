package storage

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tlogd/tlogd/tlog"
)

// TestCrashKeepsAcknowledgedRecords appends batches from one goroutine while
// another takes crash images of the filesystem at random moments, keeping
// only synced data or synced data plus a random share of unsynced writes.
// Every image must open, hold every record acknowledged before the image was
// taken at its index with the same leaf hash, and hold no checkpoint beyond
// its durable tree; every checkpoint it holds must be one the writer signed.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	crashes := 150
	if testing.Short() {
		crashes = 30
	}
	k := newTestKey(t, "example.com/log")
	fs := vfs.NewCrashableMem()
	s := openStore(t, "data", fs, k)
	defer s.Close()

	var (
		mu     sync.Mutex
		leaves []tlog.Hash                                 // every leaf of every batch begun so far
		acked  uint64                                      // leaves acknowledged (Wait returned)
		signed = map[uint64][]byte{0: s.Head().Checkpoint} // every checkpoint signed
		tokens = make(chan struct{}, 4)                    // one per batch the writer may begin
		done   = make(chan error, 1)
	)
	// The writer runs the production pipeline: it begins a batch before
	// waiting for the previous one's fsync, so two are often in flight.
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		next := 0
		var queue []*Pending
		wait := func() error {
			p := queue[0]
			queue = queue[1:]
			_, head, err := p.Wait()
			if err != nil {
				return err
			}
			mu.Lock()
			acked = head.Size
			mu.Unlock()
			return nil
		}
		for range tokens {
			n := 1 + rng.IntN(300)
			p, err := s.Begin(makeBatch(uint64(next), next, n))
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			for _, r := range p.results {
				if !r.Duplicate {
					leaves = append(leaves, r.LeafHash)
				}
			}
			if p.head != nil {
				signed[p.head.Size] = p.head.Checkpoint
			}
			mu.Unlock()
			queue = append(queue, p)
			next += n
			if len(queue) > 1 {
				if err := wait(); err != nil {
					done <- err
					return
				}
			}
		}
		for len(queue) > 0 {
			if err := wait(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	rng := rand.New(rand.NewPCG(3, 4))
	inFlight := 0 // images that hold a batch not yet acknowledged when taken
	for c := range crashes {
		// Let the writer apply one or two batches, and take the image at a
		// random moment: often while a batch is being written or synced.
		for range 1 + rng.IntN(2) {
			tokens <- struct{}{}
		}
		for range rng.IntN(20000) {
			runtime.Gosched()
		}
		mu.Lock()
		ackedBefore := int(acked)
		mu.Unlock()
		unsynced := []int{0, 0, 10, 50, 100}[rng.IntN(5)]
		img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(c), 5))})

		r, err := Open("data", testOptions(k, img))
		if err != nil {
			t.Fatalf("crash %d (%d%% unsynced kept): Open: %v", c, unsynced, err)
		}
		h := r.Head()
		mu.Lock()
		all := append([]tlog.Hash(nil), leaves...)
		sig := make(map[uint64][]byte, len(signed))
		for k, v := range signed {
			sig[k] = v
		}
		mu.Unlock()
		if h.Size < uint64(ackedBefore) {
			t.Fatalf("crash %d: recovered size %d, but %d records were acknowledged", c, h.Size, ackedBefore)
		}
		// The image may hold batches in flight; their leaves were recorded
		// when they began, before the image was taken.
		if h.Size > uint64(ackedBefore) {
			inFlight++
		}
		if h.Size > uint64(len(all)) {
			t.Fatalf("crash %d: recovered size %d, but only %d leaves were ever begun", c, h.Size, len(all))
		}
		if !bytes.Equal(sig[h.Size], h.Checkpoint) {
			t.Fatalf("crash %d: recovered checkpoint at size %d is not the one the writer signed", c, h.Size)
		}
		// Spot-check records across the whole tree, always including the
		// acknowledged edge, and a proof against the recovered checkpoint.
		var idx []uint64
		if h.Size > 0 {
			idx = []uint64{0, h.Size - 1, uint64(ackedBefore) - 1, uint64(rng.IntN(int(h.Size)))}
		}
		for _, i := range idx {
			if i >= h.Size {
				continue
			}
			es, err := r.Entries(i, 1, true, math.MaxInt)
			if err != nil {
				t.Fatalf("crash %d: entry %d: %v", c, i, err)
			}
			if tlog.LeafHash(es[0].Entry) != all[i] {
				t.Fatalf("crash %d: leaf %d changed", c, i)
			}
			p, err := r.InclusionProof(i, h.Size)
			if err != nil {
				t.Fatalf("crash %d: proof %d: %v", c, i, err)
			}
			if err := tlog.VerifyInclusion(i, h.Size, all[i], p, h.Root); err != nil {
				t.Fatalf("crash %d: %v", c, err)
			}
		}
		// No checkpoint beyond the durable tree, and each one stored is one
		// the writer signed.
		if err := r.forEachCheckpoint(func(size uint64, cp []byte) error {
			if size > h.Size {
				t.Fatalf("crash %d: checkpoint at size %d stored beyond the durable tree %d", c, size, h.Size)
			}
			if want, ok := sig[size]; ok && !bytes.Equal(want, cp) {
				t.Fatalf("crash %d: checkpoint at size %d differs from the signed one", c, size)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// The hash indexes survive or are rebuilt: leaf hashes resolve, and
		// re-appending an acknowledged payload is a duplicate of its leaf.
		for _, i := range idx {
			if i >= h.Size {
				continue
			}
			if got, err := r.LeafIndex(all[i]); err != nil || got != i {
				t.Fatalf("crash %d: LeafIndex(leaf %d) = %d, %v", c, i, got, err)
			}
		}
		if ackedBefore > 0 {
			i := rng.IntN(ackedBefore)
			res, _, err := r.Apply(makeBatch(1, i, 1))
			if err != nil {
				t.Fatalf("crash %d: Apply after recovery: %v", c, err)
			}
			if !res[0].Duplicate || res[0].Index != uint64(i) {
				t.Fatalf("crash %d: re-appending record %d gave %+v", c, i, res[0])
			}
		}
		// The recovered log keeps working.
		if _, _, err := r.Apply(makeBatch(1, 1<<30+c, 3)); err != nil {
			t.Fatalf("crash %d: Apply after recovery: %v", c, err)
		}
		r.Close()
	}
	t.Logf("%d crash images, %d of them held a batch that was in flight", crashes, inFlight)
	close(tokens)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
