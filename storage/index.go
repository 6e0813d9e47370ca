package storage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tlogd/tlogd/tlog"
)

// The two hash indexes (leaf hash → index, payload hash → index) are the
// only random keys the log writes. Inserting random keys into Pebble's
// memtable costs more than the rest of a batch together, and compacting
// them rewrites the whole index again and again as the log grows. So they
// are kept behind the durable tree: new entries live in memory, and every
// flushRecords leaves the writer freezes them and a background goroutine
// writes them as two sorted sstables that Pebble ingests. Each flush is an
// epoch: its keys are prefix || first leaf index of the epoch || hash, so an
// epoch's table overlaps no other table and Pebble ingests it straight into
// the bottom level, where it is never compacted. The epoch list and the
// watermark (the tree size below which the index is complete) are recorded
// under m/index after each ingestion.
//
// A proof never depends on these indexes. On open the entries past the
// watermark are rebuilt from the stored entries and payloads. Lookups
// consult memory first, then every epoch's table, newest first; each probe
// is a bloom-filter check on one table.
type hashIndex struct {
	// mu guards the leaf runs, which readers consult.
	mu         sync.RWMutex
	leaf       *hashRun
	frozenLeaf *hashRun

	// dedupMu guards the dedup runs: the writer changes them (holding it
	// for a whole batch), the flusher reads frozenDedup, and FindPayload
	// reads both.
	dedupMu     sync.RWMutex
	dedup       *hashRun
	frozenDedup *hashRun

	// epochs are the first leaf indexes of the epochs written to Pebble,
	// ascending; guarded by mu.
	epochs []uint64

	flushRecords int
	flushing     chan error // non-nil while a flush runs; receives its result
}

func newHashIndex(from uint64, flushRecords int) *hashIndex {
	return &hashIndex{
		leaf:         newHashRun(from, flushRecords),
		dedup:        newHashRun(from, flushRecords),
		flushRecords: flushRecords,
	}
}

// leafIndex looks a leaf hash up in memory.
func (x *hashIndex) leafIndex(h tlog.Hash) (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i, ok := x.leaf.find(h); ok {
		return i, true
	}
	return x.frozenLeaf.find(h)
}

// dedupIndex looks a payload hash up in memory; the caller holds dedupMu.
func (x *hashIndex) dedupIndex(h tlog.Hash) (uint64, bool) {
	if i, ok := x.dedup.find(h); ok {
		return i, true
	}
	return x.frozenDedup.find(h)
}

// addLeaves publishes the leaf hashes of new leaves, in index order.
func (x *hashIndex) addLeaves(hs []tlog.Hash) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, h := range hs {
		x.leaf.add(h)
	}
}

type indexEntry struct {
	hash  tlog.Hash
	index uint64
}

// reapFlush collects the result of a finished flush, if any, and drops the
// frozen maps it wrote. wait makes it block for a running flush.
func (s *Store) reapFlush(wait bool) error {
	x := s.idx
	if x.flushing == nil {
		return nil
	}
	var err error
	if wait {
		err = <-x.flushing
	} else {
		select {
		case err = <-x.flushing:
		default:
			return nil
		}
	}
	x.flushing = nil
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.frozenLeaf = nil
	x.mu.Unlock()
	x.dedupMu.Lock()
	x.frozenDedup = nil
	x.dedupMu.Unlock()
	return nil
}

// maybeFlush starts a background flush once enough entries are in memory and
// no flush is running. Only published leaves are flushed: they are durable,
// so the index never names a leaf a crash could take back. The leaf run
// holds exactly the published leaves; the dedup run may hold more, from
// batches in flight, which move to its successor.
func (s *Store) maybeFlush() {
	x := s.idx
	if x.flushing != nil || len(x.dedup.hashes) < x.flushRecords {
		return
	}
	x.mu.Lock()
	end := x.leaf.end()
	x.frozenLeaf, x.leaf = x.leaf, newHashRun(end, x.flushRecords)
	x.mu.Unlock()
	next := newHashRun(end, x.flushRecords)
	x.dedupMu.Lock()
	for _, h := range x.dedup.hashes[end-x.dedup.from:] {
		next.add(h)
	}
	x.frozenDedup, x.dedup = x.dedup, next
	x.dedupMu.Unlock()
	x.flushing = make(chan error, 1)
	leaf, dedup, done := x.frozenLeaf, x.frozenDedup, x.flushing
	go func() { done <- s.writeIndex(leaf, dedup, end) }()
}

// writeIndex writes the entries of two runs for leaves below end as the
// sstables of a new epoch, has Pebble ingest them, and records the epoch and
// the watermark end.
func (s *Store) writeIndex(leaf, dedup *hashRun, end uint64) error {
	epoch := leaf.from
	var paths []string
	for _, part := range []struct {
		prefix byte
		run    *hashRun
	}{{prefixDedup, dedup}, {prefixLeaf, leaf}} {
		p := s.fs.PathJoin(s.dir, fmt.Sprintf("index-%c-%020d.sst", part.prefix, end))
		ok, err := s.writeIndexTable(p, part.prefix, epoch, part.run, end)
		if err != nil {
			return err
		}
		if ok {
			paths = append(paths, p)
		}
	}
	if len(paths) > 0 {
		if err := s.db.Ingest(context.Background(), paths); err != nil {
			return fmt.Errorf("storage: ingest index up to %d: %w", end, err)
		}
		// Ingest linked the files into the store; drop our names for them.
		for _, p := range paths {
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("storage: remove ingested %s: %w", p, err)
			}
		}
	}
	x := s.idx
	x.mu.Lock()
	defer x.mu.Unlock()
	epochs := x.epochs
	if len(paths) > 0 && (len(epochs) == 0 || epochs[len(epochs)-1] != epoch) {
		epochs = append(epochs, epoch)
	}
	var v []byte
	for _, e := range epochs {
		v = binary.BigEndian.AppendUint64(v, e)
	}
	v = binary.BigEndian.AppendUint64(v, end)
	// NoSync: if this is lost, Open re-indexes from the older watermark and
	// writes the same keys again.
	if err := s.db.Set(metaEpochs, v, pebble.NoSync); err != nil {
		return fmt.Errorf("storage: record index epochs up to %d: %w", end, err)
	}
	x.epochs = epochs
	return nil
}

// lookupIndex finds hash h in the Pebble part of an index, newest epoch
// first.
func (s *Store) lookupIndex(prefix byte, h tlog.Hash) (uint64, error) {
	x := s.idx
	x.mu.RLock()
	epochs := x.epochs
	x.mu.RUnlock()
	var key []byte
	for i := len(epochs) - 1; i >= 0; i-- {
		key = indexEntryKey(key, prefix, epochs[i], h[:])
		index, err := s.getIndex(key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return index, err
	}
	return 0, ErrNotFound
}

// removeStaleIndexTables deletes index tables that a crash left behind
// before Pebble ingested them; their entries are rebuilt on open.
func (s *Store) removeStaleIndexTables() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", s.dir, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "index-") && strings.HasSuffix(n, ".sst") {
			if err := s.fs.Remove(s.fs.PathJoin(s.dir, n)); err != nil {
				return fmt.Errorf("storage: remove stale %s: %w", n, err)
			}
		}
	}
	return nil
}

// writeIndexTable writes the run's entries below end, sorted, under the
// epoch to an sstable at path. ok is false when there are none and nothing
// was written.
func (s *Store) writeIndexTable(path string, prefix byte, epoch uint64, run *hashRun, end uint64) (ok bool, err error) {
	es := make([]indexEntry, 0, len(run.hashes))
	for i, h := range run.hashes[:end-run.from] {
		if h != (tlog.Hash{}) {
			es = append(es, indexEntry{h, run.from + uint64(i)})
		}
	}
	if len(es) == 0 {
		return false, nil
	}
	// A hash there twice (appended again after an erasure) sorts by index,
	// and only the latest is written.
	slices.SortFunc(es, func(a, b indexEntry) int {
		// Hashes are uniform: the first 8 bytes almost always decide.
		x, y := binary.BigEndian.Uint64(a.hash[:8]), binary.BigEndian.Uint64(b.hash[:8])
		if x != y {
			return cmp.Compare(x, y)
		}
		if c := bytes.Compare(a.hash[8:], b.hash[8:]); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return false, fmt.Errorf("storage: create index table: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.popts.MakeWriterOptions(0, s.db.TableFormat()))
	key := make([]byte, 0, 9+tlog.HashSize)
	var val [8]byte
	for i, e := range es {
		if i+1 < len(es) && es[i+1].hash == e.hash {
			continue
		}
		key = indexEntryKey(key, prefix, epoch, e.hash[:])
		binary.BigEndian.PutUint64(val[:], e.index)
		if err := w.Set(key, val[:]); err != nil {
			w.Close()
			return false, fmt.Errorf("storage: write index table: %w", err)
		}
	}
	// Close flushes and fsyncs the file, as Ingest requires.
	if err := w.Close(); err != nil {
		return false, fmt.Errorf("storage: finish index table: %w", err)
	}
	return true, nil
}

// loadIndex restores the in-memory index entries past the watermark from
// the stored entries and payloads, and fills the dedup filter.
func (s *Store) loadIndex(size uint64) error {
	if err := s.loadFilter(); err != nil {
		return err
	}
	from := uint64(0)
	var epochs []uint64
	v, err := s.get(metaEpochs)
	switch {
	case err == nil:
		if len(v) < 8 || len(v)%8 != 0 {
			return fmt.Errorf("%w: index epoch list of %d bytes", ErrCorrupt, len(v))
		}
		for len(v) > 8 {
			epochs = append(epochs, binary.BigEndian.Uint64(v))
			v = v[8:]
		}
		from = binary.BigEndian.Uint64(v)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if from > size {
		return fmt.Errorf("%w: index watermark %d beyond tree size %d", ErrCorrupt, from, size)
	}
	s.idx = newHashIndex(from, s.opts.IndexFlushRecords)
	s.idx.epochs = epochs
	const chunk = 4096
	var leaves []tlog.Hash
	for start := from; start < size; start += chunk {
		es, err := s.readEntries(start, int(min(chunk, size-start)), true, math.MaxInt)
		if err != nil {
			return fmt.Errorf("storage: rebuild index from %d: %w", start, err)
		}
		leaves = leaves[:0]
		for _, e := range es {
			leaves = append(leaves, tlog.LeafHash(e.Entry))
			var h tlog.Hash // zero: no payload to index
			switch {
			case e.Erased: // an erased record holds no key any more
			case s.opts.DedupKey != nil:
				h = s.opts.DedupKey(e.Entry, e.Payload)
				s.filter.add(&h)
			case len(e.Payload) > 0:
				h = sha256.Sum256(e.Payload)
				s.filter.add(&h)
			}
			s.idx.dedup.add(h)
		}
		s.idx.addLeaves(leaves)
	}
	return nil
}

// flushIndex writes every in-memory index entry, waiting for a running
// flush first; used on Close so the next Open has nothing to rebuild.
func (s *Store) flushIndex() error {
	if err := s.reapFlush(true); err != nil {
		return err
	}
	x := s.idx
	if len(x.dedup.hashes) == 0 {
		return nil
	}
	// Nothing is in flight at Close, so every leaf is published.
	end := x.leaf.end()
	if err := s.writeIndex(x.leaf, x.dedup, end); err != nil {
		return err
	}
	x.leaf, x.dedup = newHashRun(end, 0), newHashRun(end, 0)
	return nil
}
