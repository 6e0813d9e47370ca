package storage

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// TestPowerLoss appends batches from one goroutine while another takes crash
// images of the filesystem at random moments, keeping only synced data or
// synced data plus a random share of unsynced writes (Pebble's crashable
// in-memory filesystem). Every image must open, hold every record
// acknowledged before the image was taken at its index with the same leaf
// hash, and hold no checkpoint beyond its durable tree; every checkpoint it
// holds must be one the writer signed, and every checkpoint the writer
// published must be reproducible: the recovered log serves the same signed
// bytes at its size and proves it consistent with the recovered head.
//
// TLOGD_POWERLOSS_IMAGES sets the number of crash images (default 300, 60
// with -short); they are taken in rounds of 150 on a fresh log each.
func TestPowerLoss(t *testing.T) {
	images := 300
	if testing.Short() {
		images = 60
	}
	if v := os.Getenv("TLOGD_POWERLOSS_IMAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("TLOGD_POWERLOSS_IMAGES: %v", err)
		}
		images = n
	}
	var total powerLossCounts
	for round := 0; images > 0; round++ {
		n := min(images, 150)
		images -= n
		c := powerLossRound(t, uint64(round), n)
		total.images += c.images
		total.inFlight += c.inFlight
		total.acked += c.acked
		total.published += c.published
		total.unsynced += c.unsynced
	}
	t.Logf("%d crash images (%d keeping part of the unsynced writes), %d holding a batch in flight; the last image of each round held all of its %d acknowledged records and reproduced all of its %d published checkpoints",
		total.images, total.unsynced, total.inFlight, total.acked, total.published)
}

// cloneSafeFS works around a deadlock in Pebble's crashable MemFS (v2.1.7):
// MemFS.Link read-locks its clone mutex twice, nested, so a CrashClone
// that asks for the write lock between the two blocks both for good. It
// hung a 10,000-image run when a crash image was taken while an index
// table was being ingested (ingestion links files). Links and clones
// exclude each other here, so a clone never waits inside a Link.
type cloneSafeFS struct {
	vfs.FS
	mu sync.RWMutex
}

func (f *cloneSafeFS) Link(oldname, newname string) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.FS.Link(oldname, newname)
}

func (f *cloneSafeFS) crashClone(cfg vfs.CrashCloneCfg) *vfs.MemFS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.FS.(*vfs.MemFS).CrashClone(cfg)
}

type powerLossCounts struct {
	images, inFlight, unsynced int
	acked, published           uint64 // summed over rounds: the records and checkpoints of each round's last image
}

// powerLossRound runs one writer on a fresh log and takes n crash images.
func powerLossRound(t *testing.T, seed uint64, crashes int) powerLossCounts {
	k := newTestKey(t, "example.com/log")
	mem := vfs.NewCrashableMem()
	fs := &cloneSafeFS{FS: mem}
	s := openStore(t, "data", fs, k)
	defer s.Close()

	var (
		mu        sync.Mutex
		leaves    []tlog.Hash                                 // every leaf of every batch begun so far
		acked     uint64                                      // leaves acknowledged (Wait returned)
		signed    = map[uint64][]byte{0: s.Head().Checkpoint} // every checkpoint signed
		published = []uint64{0}                               // the sizes of the checkpoints Wait returned
		model     = &sumdbTree{}                              // the tree of leaves, in x/mod/sumdb/tlog's layout
		tokens    = make(chan struct{}, 4)                    // one per batch the writer may begin
		done      = make(chan error, 1)
	)
	// The writer runs the production pipeline: it begins a batch before
	// waiting for the previous one's fsync, so two are often in flight.
	go func() {
		rng := rand.New(rand.NewPCG(seed, 2))
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
			if head.Size > acked {
				published = append(published, head.Size)
			}
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
					model.add(r.LeafHash)
				}
			}
			if p.head != nil {
				signed[p.head.Size] = p.head.Checkpoint
				if want := model.root(p.head.Size); p.head.Root != want {
					mu.Unlock()
					done <- fmt.Errorf("signed root %s at size %d, sumdb says %s", p.head.Root, p.head.Size, want)
					return
				}
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

	rng := rand.New(rand.NewPCG(seed, 4))
	var counts powerLossCounts
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
		pub := append([]uint64(nil), published...)
		mu.Unlock()
		unsynced := 0 // a third of the images keep only synced data
		if rng.IntN(3) > 0 {
			unsynced = rng.IntN(101)
			counts.unsynced++
		}
		img := fs.crashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(seed, uint64(c)))})

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
			counts.inFlight++
		}
		if h.Size > uint64(len(all)) {
			t.Fatalf("crash %d: recovered size %d, but only %d leaves were ever begun", c, h.Size, len(all))
		}
		if !bytes.Equal(sig[h.Size], h.Checkpoint) {
			t.Fatalf("crash %d: recovered checkpoint at size %d is not the one the writer signed", c, h.Size)
		}
		// Every checkpoint published before the image is reproducible. The
		// recovered root equals the model's, so every leaf below it is the
		// one the model holds, and every published root (checked against
		// the model when signed) is the recovered tree's root at its size.
		// The recovered log must also serve each one's exact bytes and prove
		// it consistent with its head: all of them in the round's last
		// image, and the latest 20 and 20 more at random in the others.
		mu.Lock()
		modelRoot := model.root(h.Size)
		mu.Unlock()
		if h.Root != modelRoot {
			t.Fatalf("crash %d: recovered root at size %d is not the signed tree's", c, h.Size)
		}
		check := pub
		if c < crashes-1 && len(pub) > 40 {
			check = slices.Clone(pub[len(pub)-20:])
			for range 20 {
				check = append(check, pub[rng.IntN(len(pub)-20)])
			}
		}
		for _, size := range check {
			got, err := r.CheckpointAt(size)
			if err != nil || !bytes.Equal(got, sig[size]) {
				t.Fatalf("crash %d: the checkpoint published at size %d is not reproduced: %v", c, size, err)
			}
			if size == 0 {
				continue
			}
			p, err := r.ConsistencyProof(size, h.Size)
			if err != nil {
				t.Fatalf("crash %d: consistency %d→%d: %v", c, size, h.Size, err)
			}
			cp, _, err := tlog.OpenCheckpoint(got, k.verifier)
			if err != nil {
				t.Fatal(err)
			}
			if err := sumdb.CheckTree(sumdbHashes(p), int64(h.Size), sumdb.Hash(h.Root), int64(size), sumdb.Hash(cp.Root)); err != nil {
				t.Fatalf("crash %d: the checkpoint published at size %d is not consistent with the recovered head: %v", c, size, err)
			}
		}
		if c == crashes-1 {
			counts.acked, counts.published = uint64(ackedBefore), uint64(len(pub))
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
	close(tokens)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counts.images = crashes
	return counts
}
