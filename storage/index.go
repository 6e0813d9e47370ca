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
// only random keys the log writes, and inserting random keys into Pebble's
// memtable costs more than the rest of a batch together. So they are kept
// behind the durable tree: new entries live in memory, and every
// flushRecords leaves the writer freezes them and a background goroutine
// writes them as two sorted sstables that Pebble ingests, then records the
// index watermark (m/indexed). A proof never depends on these indexes, and
// on open the entries past the watermark are rebuilt from the stored entries
// and payloads. Lookups consult memory first, then Pebble.
type hashIndex struct {
	// mu guards the leaf runs, which readers consult.
	mu         sync.RWMutex
	leaf       *hashRun
	frozenLeaf *hashRun

	// The dedup runs belong to the writer; the flusher reads frozenDedup.
	dedup       *hashRun
	frozenDedup *hashRun

	flushRecords int
	flushing     chan error // non-nil while a flush runs; receives its result
}

var metaIndexed = []byte{prefixMeta, 'i', 'n', 'd', 'e', 'x', 'e', 'd'}

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

// dedupIndex looks a payload hash up in memory; writer only.
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
	x.frozenDedup = nil
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
	for _, h := range x.dedup.hashes[end-x.dedup.from:] {
		next.add(h)
	}
	x.frozenDedup, x.dedup = x.dedup, next
	x.flushing = make(chan error, 1)
	leaf, dedup, done := x.frozenLeaf, x.frozenDedup, x.flushing
	go func() { done <- s.writeIndex(leaf, dedup, end) }()
}

// writeIndex writes the entries of two runs for leaves below end as
// sstables, has Pebble ingest them, and advances the watermark to end.
func (s *Store) writeIndex(leaf, dedup *hashRun, end uint64) error {
	var paths []string
	for _, part := range []struct {
		prefix byte
		run    *hashRun
	}{{prefixDedup, dedup}, {prefixLeaf, leaf}} {
		p := s.fs.PathJoin(s.dir, fmt.Sprintf("index-%c-%020d.sst", part.prefix, end))
		ok, err := s.writeIndexTable(p, part.prefix, part.run, end)
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
	if err := s.db.Set(metaIndexed, binary.BigEndian.AppendUint64(nil, end), pebble.NoSync); err != nil {
		return fmt.Errorf("storage: record index watermark %d: %w", end, err)
	}
	return nil
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

// writeIndexTable writes the run's entries below end, sorted, to an sstable
// at path. ok is false when there are none and nothing was written.
func (s *Store) writeIndexTable(path string, prefix byte, run *hashRun, end uint64) (ok bool, err error) {
	es := make([]indexEntry, 0, len(run.hashes))
	for i, h := range run.hashes[:end-run.from] {
		if h != (tlog.Hash{}) {
			es = append(es, indexEntry{h, run.from + uint64(i)})
		}
	}
	if len(es) == 0 {
		return false, nil
	}
	slices.SortFunc(es, func(a, b indexEntry) int {
		// Hashes are uniform: the first 8 bytes almost always decide.
		x, y := binary.BigEndian.Uint64(a.hash[:8]), binary.BigEndian.Uint64(b.hash[:8])
		if x != y {
			return cmp.Compare(x, y)
		}
		return bytes.Compare(a.hash[8:], b.hash[8:])
	})
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return false, fmt.Errorf("storage: create index table: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.popts.MakeWriterOptions(0, s.db.TableFormat()))
	key := make([]byte, 0, 1+tlog.HashSize)
	var val [8]byte
	for _, e := range es {
		key = hashKey(key, prefix, e.hash[:])
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
	if v, err := s.get(metaIndexed); err == nil && len(v) == 8 {
		from = binary.BigEndian.Uint64(v)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if from > size {
		return fmt.Errorf("%w: index watermark %d beyond tree size %d", ErrCorrupt, from, size)
	}
	s.idx = newHashIndex(from, s.opts.IndexFlushRecords)
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
			if len(e.Payload) > 0 {
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
